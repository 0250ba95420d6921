// The CUDA runtime behind atb/host/cuda_memory.hpp.
#include <atb/host/cuda_memory.hpp>

#include <cuda_runtime.h>

#include <string>
#include <utility>

namespace atb::host::cuda {
namespace {

Status checked(cudaError_t error, const char* call) {
  if (error == cudaSuccess) return Status::ok();
  cudaGetLastError();  // clears a non-sticky error so the next call starts clean
  return Status::internal(std::string(call) + " failed: " + cudaGetErrorString(error));
}

Status range_check(size_t offset, size_t bytes, size_t size) {
  if (offset > size || bytes > size - offset)
    return Status::invalid("copy of " + std::to_string(bytes) + " bytes at offset " + std::to_string(offset) +
                           "; allowed: within the " + std::to_string(size) + "-byte allocation");
  return Status::ok();
}

}  // namespace

bool device_present() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

Expected<Stream> Stream::create() {
  cudaStream_t handle = nullptr;
  ATB_RETURN_IF_ERROR(checked(cudaStreamCreateWithFlags(&handle, cudaStreamNonBlocking), "cudaStreamCreateWithFlags"));
  return Stream(handle);
}

Stream& Stream::operator=(Stream&& other) noexcept {
  std::swap(handle_, other.handle_);
  return *this;
}

Stream::~Stream() {
  if (handle_) cudaStreamDestroy(static_cast<cudaStream_t>(handle_));
}

Status Stream::synchronize() const {
  return checked(cudaStreamSynchronize(static_cast<cudaStream_t>(handle_)), "cudaStreamSynchronize");
}

Expected<DeviceMemory> DeviceMemory::allocate(size_t bytes) {
  void* data = nullptr;
  ATB_RETURN_IF_ERROR(checked(cudaMalloc(&data, bytes == 0 ? 1 : bytes), "cudaMalloc"));
  return DeviceMemory(static_cast<std::byte*>(data), bytes);
}

DeviceMemory& DeviceMemory::operator=(DeviceMemory&& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(bytes_, other.bytes_);
  return *this;
}

DeviceMemory::~DeviceMemory() {
  if (data_) cudaFree(data_);
}

Status DeviceMemory::upload(const void* host, size_t bytes, const Stream& stream, size_t offset) {
  ATB_RETURN_IF_ERROR(range_check(offset, bytes, bytes_));
  return checked(
      cudaMemcpyAsync(data_ + offset, host, bytes, cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream.handle())),
      "cudaMemcpyAsync (host to device)");
}

Status DeviceMemory::download(void* host, size_t bytes, const Stream& stream, size_t offset) const {
  ATB_RETURN_IF_ERROR(range_check(offset, bytes, bytes_));
  return checked(
      cudaMemcpyAsync(host, data_ + offset, bytes, cudaMemcpyDeviceToHost, static_cast<cudaStream_t>(stream.handle())),
      "cudaMemcpyAsync (device to host)");
}

}  // namespace atb::host::cuda
