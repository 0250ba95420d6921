// Loads the plugin that tests/consumer_plugin built out of tree against the installed SDK package.
#include <gtest/gtest.h>

#include <atb/host/paged_kv.hpp>
#include <atb/host/registry.hpp>
#include <atb/struct_io.hpp>

#include <cmath>

namespace atb::host {
namespace {

TEST(ConsumerPlugin, BuiltFromTheInstalledPackageLoadsAndRuns) {
  const auto registry = Registry::scan({ATB_TEST_CONSUMER_PLUGIN_DIR}, false);
  auto plugin = registry.select("consumer_mean");
  ASSERT_TRUE(plugin) << plugin.error().message();
  atb_layer_spec spec = make_versioned<atb_layer_spec>();
  spec.attention_kind = ATB_ATTENTION_STANDARD;
  spec.num_query_heads = 4;
  spec.num_kv_heads = 2;
  spec.head_size_k = spec.head_size_v = 16;
  spec.dtype = ATB_DTYPE_F32;
  spec.block_size = 4;
  spec.num_layers = 1;
  spec.kv_shared_with_layer = -1;
  spec.device_type = ATB_DEVICE_CPU;
  auto backend = (*plugin)->create_backend(spec, "{}");
  ASSERT_TRUE(backend) << backend.error().message();
  auto cache = backend->kv_cache_spec();
  ASSERT_TRUE(cache);
  auto pool = PagePool::allocate(*cache, 8);
  ASSERT_TRUE(pool);
  PagedKvManager manager(4, 8, 3);
  auto batch = manager.schedule({{0, 10}});
  ASSERT_TRUE(batch);
  HostTensor q(ATB_DTYPE_F32, 10, 4, 16), k(ATB_DTYPE_F32, 10, 2, 16), v(ATB_DTYPE_F32, 10, 2, 16), out(ATB_DTYPE_F32, 10, 4, 16);
  for (int t = 0; t < 10; ++t)
    for (int h = 0; h < 2; ++h)
      for (int d = 0; d < 16; ++d) v.set(t, h, d, float(t * 100 + h * 10 + d));
  atb_forward_args args = make_versioned<atb_forward_args>();
  args.query = q.descriptor();
  args.key = k.descriptor();
  args.value = v.descriptor();
  args.output = out.descriptor();
  args.kv_pages = pool->data();
  args.num_pages = pool->num_pages();
  args.page_stride_bytes = pool->stride_bytes();
  batch->fill(args);
  ASSERT_TRUE(backend->forward(args));
  // Token 9 sees positions 0..9: mean of t*100 is 450.
  EXPECT_NEAR(out.get(9, 3, 5), 450.0f + 10 + 5, 1e-3);
  EXPECT_NEAR(out.get(0, 0, 0), 0.0f, 1e-6);
}

}  // namespace
}  // namespace atb::host
