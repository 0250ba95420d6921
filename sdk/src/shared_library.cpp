#include <atb/host/shared_library.hpp>

#include <dlfcn.h>

namespace atb::host {

Expected<std::shared_ptr<SharedLibrary>> SharedLibrary::open(const std::filesystem::path& path) {
  dlerror();  // clear any stale error
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = dlerror();
    return Status::invalid("dlopen(\"" + path.string() +
                           "\") failed: " + (reason != nullptr ? reason : "unknown dlopen error"));
  }
  return std::shared_ptr<SharedLibrary>(new SharedLibrary(path, handle));
}

SharedLibrary::~SharedLibrary() {
  if (handle_ != nullptr) dlclose(handle_);
}

void* SharedLibrary::symbol(const char* name) const {
  dlerror();
  return dlsym(handle_, name);
}

}  // namespace atb::host
