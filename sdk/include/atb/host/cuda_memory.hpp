// What a host needs to hand a plugin CUDA tensors: device allocations and a stream, as RAII handles
// returning Status.  Built on the CUDA runtime where the build has CUDA; elsewhere every call says
// so (no device is then usable).
//
// Fork note: the CUDA driver does not survive fork(); a process that forks children to use a device
// (as the conformance suite's isolation does) must not call anything here before forking.
#pragma once

#include <atb/status.hpp>

#include <cstddef>
#include <vector>

namespace atb::host::cuda {

// Whether this build has CUDA and the runtime sees at least one device (initialises the driver).
bool device_present();

// A stream of the current device that does not synchronise with the legacy default stream.
class Stream {
 public:
  static Expected<Stream> create();
  Stream(Stream&& other) noexcept : handle_(other.handle_) { other.handle_ = nullptr; }
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream();

  void* handle() const { return handle_; }  // a cudaStream_t
  Status synchronize() const;

 private:
  explicit Stream(void* handle) : handle_(handle) {}
  void* handle_ = nullptr;
};

// `bytes` of device memory (256-byte aligned, as cudaMalloc gives).
class DeviceMemory {
 public:
  static Expected<DeviceMemory> allocate(size_t bytes);
  DeviceMemory() = default;
  DeviceMemory(DeviceMemory&& other) noexcept : data_(other.data_), bytes_(other.bytes_) {
    other.data_ = nullptr, other.bytes_ = 0;
  }
  DeviceMemory& operator=(DeviceMemory&& other) noexcept;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  ~DeviceMemory();

  // A new allocation holding a copy of `values` (copied in order on `stream`).
  template <class T>
  static Expected<DeviceMemory> copy_of(const std::vector<T>& values, const Stream& stream) {
    auto memory = allocate(values.size() * sizeof(T));
    if (!memory) return memory.error();
    if (Status copied = memory->upload(values.data(), values.size() * sizeof(T), stream); !copied) return copied;
    return memory;
  }

  std::byte* data() const { return data_; }
  template <class T>
  T* as() const {
    return reinterpret_cast<T*>(data_);
  }
  size_t bytes() const { return bytes_; }
  // Copies `bytes` between host memory and this allocation at `offset`, in order on `stream`
  // (waits for nothing else; pageable host memory makes the upload synchronous with the host).
  Status upload(const void* host, size_t bytes, const Stream& stream, size_t offset = 0);
  Status download(void* host, size_t bytes, const Stream& stream, size_t offset = 0) const;

 private:
  DeviceMemory(std::byte* data, size_t bytes) : data_(data), bytes_(bytes) {}
  std::byte* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace atb::host::cuda
