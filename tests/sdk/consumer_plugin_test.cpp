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
  const atb_layer_spec spec = standard_layer_spec(4, 2, 16, ATB_DTYPE_F32, 4);
  auto backend = (*plugin)->create_backend(spec, "{}");
  ASSERT_TRUE(backend) << backend.error().message();
  auto cache = backend->kv_cache_spec();
  ASSERT_TRUE(cache);
  auto pool = PagePool::allocate(*cache, 8);
  ASSERT_TRUE(pool);
  PagedKvManager manager(4, 8, 3);
  auto batch = manager.schedule({{0, 10}});
  ASSERT_TRUE(batch);
  HostTensor q(ATB_DTYPE_F32, 10, 4, 16), k(ATB_DTYPE_F32, 10, 2, 16), v(ATB_DTYPE_F32, 10, 2, 16),
      out(ATB_DTYPE_F32, 10, 4, 16);
  for (int t = 0; t < 10; ++t)
    for (int h = 0; h < 2; ++h)
      for (int d = 0; d < 16; ++d) v.set(t, h, d, float(t * 100 + h * 10 + d));
  const atb_forward_args args =
      make_forward_args(*pool, *batch, q.descriptor(), k.descriptor(), v.descriptor(), out.descriptor());
  ASSERT_TRUE(backend->forward(args));
  // Token 9 sees positions 0..9: mean of t*100 is 450.
  EXPECT_NEAR(out.get(9, 3, 5), 450.0f + 10 + 5, 1e-3);
  EXPECT_NEAR(out.get(0, 0, 0), 0.0f, 1e-6);
}

}  // namespace
}  // namespace atb::host
