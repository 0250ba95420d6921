#include "mock_engine_device.hpp"

#include <atb/half.hpp>

#include <string>

namespace atb::mock_host {
namespace {

using host::cuda::DeviceMemory;

// `view` of host memory starting `view.data - host_base` bytes into `host_base`, re-pointed at
// the same place in `mirror`, as a CUDA tensor on `stream`.
atb_tensor device_view(const atb_tensor& view, const std::byte* host_base, const DeviceMemory& mirror, void* stream) {
  atb_tensor device = view;
  device.data = mirror.data() + (static_cast<const std::byte*>(view.data) - host_base);
  device.device_type = ATB_DEVICE_CUDA;
  device.device_id = 0;
  device.stream = stream;
  return device;
}

template <class T>
Expected<DeviceMemory> mirror_of(const std::vector<T>& host) {
  return DeviceMemory::allocate(host.size() * sizeof(T));
}

Expected<DeviceMemory> mirror_of(const host::HostTensor& tensor) { return DeviceMemory::allocate(tensor.byte_size()); }

template <class T>
Status upload(const std::vector<T>& host, DeviceMemory& mirror, const host::cuda::Stream& stream) {
  return mirror.upload(host.data(), host.size() * sizeof(T), stream);
}

Status upload(const std::optional<host::HostTensor>& tensor, DeviceMemory& mirror, const host::cuda::Stream& stream) {
  return tensor ? mirror.upload(tensor->bytes(), tensor->byte_size(), stream) : Status::ok();
}

}  // namespace

Expected<std::shared_ptr<DeviceEngine>> DeviceEngine::create(const host::PagePool& pool,
                                                             const atb_kv_cache_spec& spec) {
  auto stream = host::cuda::Stream::create();
  if (!stream) return stream.error();
  auto mirror = DeviceMemory::allocate(pool.allocation_bytes());
  if (!mirror) return mirror.error();
  auto workspace = DeviceMemory::allocate(spec.workspace_bytes);
  if (!workspace) return workspace.error();
  const uintptr_t pages = reinterpret_cast<uintptr_t>(mirror->data() + pool.leading_bytes());
  if (spec.page_alignment > 0 && pages % spec.page_alignment != 0)
    return Status::unsupported("spec.page_alignment = " + std::to_string(spec.page_alignment) +
                               ": the mock engine's device pool is only aligned to 256 bytes");
  auto engine =
      std::make_shared<DeviceEngine>(DeviceEngine{std::move(*stream), std::move(*mirror), std::move(*workspace)});
  ATB_RETURN_IF_ERROR(engine->pool.upload(pool.allocation(), pool.allocation_bytes(), engine->stream));
  ATB_RETURN_IF_ERROR(engine->stream.synchronize());
  return engine;
}

Status mirror_on_device(DeviceEngine& engine, const host::PagePool& pool, PreparedStep& step) {
  auto device = std::make_shared<DeviceStep>();
  const auto allocate = [](Expected<DeviceMemory> memory, DeviceMemory& into) {
    if (!memory) return memory.error();
    into = std::move(*memory);
    return Status::ok();
  };
  for (auto [tensor, mirror] : {std::pair{&step.query, &device->query}, std::pair{&step.key, &device->key},
                                std::pair{&step.value, &device->value}})
    if (*tensor) ATB_RETURN_IF_ERROR(allocate(mirror_of(**tensor), *mirror));
  ATB_RETURN_IF_ERROR(allocate(mirror_of(step.output), device->output));
  ATB_RETURN_IF_ERROR(allocate(mirror_of(step.batch.slot_mapping), device->slot_mapping));
  ATB_RETURN_IF_ERROR(allocate(mirror_of(step.batch.query_start_loc), device->query_start_loc));
  ATB_RETURN_IF_ERROR(allocate(mirror_of(step.batch.seq_lens), device->seq_lens));
  ATB_RETURN_IF_ERROR(allocate(mirror_of(step.batch.block_tables), device->block_tables));

  void* stream = engine.stream.handle();
  if (step.query)
    device->query_view = device_view(*step.query->descriptor(), step.query->bytes(), device->query, stream);
  if (step.key) device->key_view = device_view(*step.key->descriptor(), step.key->bytes(), device->key, stream);
  if (step.value)
    device->value_view = device_view(*step.value->descriptor(), step.value->bytes(), device->value, stream);
  device->output_view = device_view(step.output_view, step.output.bytes(), device->output, stream);

  atb_forward_args& args = step.args;
  if (args.query) args.query = &device->query_view;
  if (args.key) args.key = &device->key_view;
  if (args.value) args.value = &device->value_view;
  if (args.output) args.output = &device->output_view;
  args.kv_pages = engine.pool.data() + pool.leading_bytes();
  args.slot_mapping = device->slot_mapping.as<const int64_t>();
  args.query_start_loc = device->query_start_loc.as<const int32_t>();
  args.seq_lens = device->seq_lens.as<const int32_t>();
  args.block_tables = device->block_tables.as<const int32_t>();
  args.workspace = engine.workspace.data();
  args.workspace_bytes = engine.workspace.bytes();
  step.device = std::move(device);
  return Status::ok();
}

Status run_on_device(DeviceEngine& engine, const host::PagePool& pool, PreparedStep& step, host::Backend& backend) {
  DeviceStep& device = *step.device;
  const host::cuda::Stream& stream = engine.stream;
  ATB_RETURN_IF_ERROR(upload(step.query, device.query, stream));
  ATB_RETURN_IF_ERROR(upload(step.key, device.key, stream));
  ATB_RETURN_IF_ERROR(upload(step.value, device.value, stream));
  ATB_RETURN_IF_ERROR(device.output.upload(step.output.bytes(), step.output.byte_size(), stream));
  ATB_RETURN_IF_ERROR(upload(step.batch.slot_mapping, device.slot_mapping, stream));
  ATB_RETURN_IF_ERROR(upload(step.batch.query_start_loc, device.query_start_loc, stream));
  ATB_RETURN_IF_ERROR(upload(step.batch.seq_lens, device.seq_lens, stream));
  ATB_RETURN_IF_ERROR(upload(step.batch.block_tables, device.block_tables, stream));
  const Status forwarded = backend.forward(step.args);
  ATB_RETURN_IF_ERROR(stream.synchronize());  // a fault in the plugin's kernels surfaces here
  ATB_RETURN_IF_ERROR(engine.pool.download(pool.allocation(), pool.allocation_bytes(), stream));
  ATB_RETURN_IF_ERROR(device.output.download(step.output.bytes(), step.output.byte_size(), stream));
  ATB_RETURN_IF_ERROR(stream.synchronize());
  return forwarded;
}

}  // namespace atb::mock_host
