// RAII ownership of one dlopen() handle.
#pragma once

#include <atb/status.hpp>

#include <filesystem>
#include <memory>

namespace atb::host {

class SharedLibrary {
 public:
  // dlopen(path, RTLD_NOW | RTLD_LOCAL); the error carries dlerror()'s text.
  static Expected<std::shared_ptr<SharedLibrary>> open(const std::filesystem::path& path);

  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;
  ~SharedLibrary();

  // dlsym; nullptr when the symbol is absent.
  void* symbol(const char* name) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  SharedLibrary(std::filesystem::path path, void* handle) : path_(std::move(path)), handle_(handle) {}
  std::filesystem::path path_;
  void* handle_;
};

}  // namespace atb::host
