// atb/host/cuda_memory.hpp in a build without CUDA: no device is usable, and every call says why.
#include <atb/host/cuda_memory.hpp>

#include <utility>

namespace atb::host::cuda {
namespace {

Status absent() {
  return Status::unsupported("this build has no CUDA (configure with nvcc present and ATB_ENABLE_CUDA=ON)");
}

}  // namespace

bool device_present() { return false; }

Expected<Stream> Stream::create() { return absent(); }
Stream& Stream::operator=(Stream&& other) noexcept {
  std::swap(handle_, other.handle_);
  return *this;
}
Stream::~Stream() = default;
Status Stream::synchronize() const { return absent(); }

Expected<DeviceMemory> DeviceMemory::allocate(size_t) { return absent(); }
DeviceMemory& DeviceMemory::operator=(DeviceMemory&& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(bytes_, other.bytes_);
  return *this;
}
DeviceMemory::~DeviceMemory() = default;
Status DeviceMemory::upload(const void*, size_t, const Stream&, size_t) { return absent(); }
Status DeviceMemory::download(void*, size_t, const Stream&, size_t) const { return absent(); }

}  // namespace atb::host::cuda
