// Host services as GoogleMock mocks: a plugin's refusal reaches the host's log sink exactly once, at
// error level, naming the field; a valid forward logs nothing at warning level or above.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atb/mock_host/log_sink.hpp>
#include <atb/mock_host/mock_engine.hpp>

#include "../support/plugins.hpp"

namespace atb::mock_host {
namespace {

using testing::_;
using testing::HasSubstr;

class LogSinkTest : public testing::TestWithParam<std::string> {
 protected:
  void TearDown() override {
    // Point the plugin's logging back at the SDK before the mock goes away.
    if (const host::Plugin* plugin = test::build_plugin(GetParam())) (void)host::Plugin::load(plugin->path());
  }
  MockLogSink sink_;
};

TEST_P(LogSinkTest, ARefusedForwardLogsOnceAtErrorLevel) {
  const host::Plugin* plugin = test::build_plugin(GetParam());
  ASSERT_NE(plugin, nullptr);
  ASSERT_TRUE(plugin->set_host_services(host_services_for(sink_, ATB_LOG_WARN)));
  auto engine = MockEngine::create(*plugin, EngineShape{}, "{}");
  ASSERT_TRUE(engine) << engine.error().message();

  EXPECT_CALL(sink_, log(_, _, _)).Times(0);  // a valid forward is silent
  ASSERT_TRUE(engine->step({{}, {{0, 20}}}));
  testing::Mock::VerifyAndClearExpectations(&sink_);

  EXPECT_CALL(sink_, log(ATB_LOG_ERROR, _, HasSubstr("forward_args.query"))).Times(1);
  auto step = engine->prepare({{}, {{0, 1}}});
  ASSERT_TRUE(step);
  (*step)->args.query = nullptr;
  EXPECT_FALSE(engine->run(**step));
}

INSTANTIATE_TEST_SUITE_P(Backends, LogSinkTest, testing::Values("reference", "turboquant"));

}  // namespace
}  // namespace atb::mock_host
