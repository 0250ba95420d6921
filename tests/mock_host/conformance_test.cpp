// The conformance suite as GoogleTest: every check against every backend the build's plugin
// directory holds (value-parameterised), and each deliberately broken plugin caught by the check
// meant for it.
#include <gtest/gtest.h>

#include <atb/host/registry.hpp>
#include <atb/mock_host/conformance.hpp>
#include <atb/mock_host/isolation.hpp>

#include <cstdio>
#include <cstdlib>

#include <ostream>
#include <string>
#include <tuple>
#include <vector>

namespace atb::mock_host {
namespace {

struct Case {
  std::string backend;
  std::filesystem::path path;
  std::string check;
};

void PrintTo(const Case& c, std::ostream* out) { *out << c.backend << " / " << c.check; }

std::vector<Case> shipped_cases() {
  std::vector<Case> cases;
  const auto registry = host::Registry::scan({ATB_TEST_PLUGIN_DIR});
  for (const auto& plugin : registry.plugins())
    for (const auto& check : check_names()) cases.push_back({plugin.info().backend_name, plugin.path(), check});
  return cases;
}

class ShippedPlugins : public testing::TestWithParam<Case> {};

TEST_P(ShippedPlugins, PassTheCheck) {
  const CheckResult result = run_check(GetParam().check, GetParam().path, {});
  EXPECT_TRUE(result.passed) << GetParam().backend << " / " << result.check << ": " << result.message;
  EXPECT_FALSE(result.message.empty());
}

INSTANTIATE_TEST_SUITE_P(Conformance, ShippedPlugins, testing::ValuesIn(shipped_cases()),
                         [](const testing::TestParamInfo<Case>& param_info) {
                           return param_info.param.backend + "_" + param_info.param.check;
                         });

// The same checks with the layer, pages, tensors and arrays in CUDA device memory, for every plugin
// that lists CUDA (none in a build without CUDA).
std::vector<Case> shipped_cuda_cases() {
  std::vector<Case> cases;
  for (const Case& c : shipped_cases()) {
    auto plugin = host::Plugin::load(c.path);
    if (plugin && (plugin->info().device_mask & ATB_BIT(ATB_DEVICE_CUDA))) cases.push_back(c);
  }
  return cases;
}

class ShippedPluginsOnCuda : public testing::TestWithParam<Case> {};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ShippedPluginsOnCuda);

TEST_P(ShippedPluginsOnCuda, PassTheCheck) {
  ConformanceOptions options;
  options.device_type = ATB_DEVICE_CUDA;
  static const bool usable = cuda_device_usable(options);
  if (!usable) GTEST_SKIP() << "no CUDA device is usable on this machine: the checks on device memory need one";
  const CheckResult result = run_check(GetParam().check, GetParam().path, options);
  EXPECT_TRUE(result.passed) << GetParam().backend << " / " << result.check << " on CUDA: " << result.message;
  EXPECT_FALSE(result.message.empty());
  std::printf("%s / %s on CUDA: %s\n", GetParam().backend.c_str(), result.check.c_str(), result.message.c_str());
}

INSTANTIATE_TEST_SUITE_P(ConformanceOnCuda, ShippedPluginsOnCuda, testing::ValuesIn(shipped_cuda_cases()),
                         [](const testing::TestParamInfo<Case>& param_info) {
                           return param_info.param.backend + "_" + param_info.param.check;
                         });

TEST(ShippedPlugins, BothBackendsAreFound) {
  std::vector<std::string> names;
  for (const Case& c : shipped_cases()) names.push_back(c.backend);
  EXPECT_NE(std::find(names.begin(), names.end(), "reference"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "turboquant"), names.end());
}

void expect_caught(const std::filesystem::path& plugin, const std::string& check, const std::string& message_part) {
  const CheckResult result = run_check(check, plugin, {});
  EXPECT_FALSE(result.passed) << plugin << " passed " << check << ": " << result.message;
  EXPECT_NE(result.message.find(message_part), std::string::npos) << plugin << " / " << check << ": " << result.message;
}

TEST(BrokenPlugins, ALiarAboutItsPageSizeFailsTheGuardCheck) {
  expect_caught(std::filesystem::path(ATB_TEST_BROKEN_DIR) / "broken_1.so", "spec_and_guards", "wrote past page");
}

TEST(BrokenPlugins, AWriterPastTheOutputFailsTheGuardCheck) {
  expect_caught(std::filesystem::path(ATB_TEST_BROKEN_DIR) / "broken_2.so", "spec_and_guards",
                "outside the output tensor");
}

TEST(BrokenPlugins, AnErrorWrittenPastItsSizeFailsTheStructSizeCheck) {
  expect_caught(std::filesystem::path(ATB_TEST_BROKEN_DIR) / "broken_3.so", "struct_sizes", "written past its end");
}

TEST(BrokenPlugins, ASchemaListingARefusedKeyFailsTheSchemaCheck) {
  expect_caught(std::filesystem::path(ATB_TEST_BROKEN_DIR) / "broken_4.so", "config_schema", "'tile_rows'");
}

TEST(BrokenPlugins, IgnoringUnknownFlagsFailsTheBadArgumentCheck) {
  expect_caught(std::filesystem::path(ATB_TEST_BROKEN_DIR) / "broken_5.so", "bad_arguments", "an unknown flag bit");
}

TEST(BrokenPlugins, ReadingBytesNeverWrittenFailsTheHostObligationCheck) {
  expect_caught(std::filesystem::path(ATB_TEST_BROKEN_DIR) / "broken_6.so", "host_obligations", "never had written");
}

TEST(BrokenPlugins, CheckingUnusedBlockTableEntriesFailsTheHostObligationCheck) {
  expect_caught(std::filesystem::path(ATB_TEST_BROKEN_DIR) / "broken_7.so", "host_obligations", "was refused");
}

TEST(BrokenPlugins, AFalseCompressionFlagFailsTheCacheFlagCheck) {
  expect_caught(std::filesystem::path(ATB_TEST_BROKEN_DIR) / "broken_8.so", "cache_flags",
                "ATB_KV_CACHE_COMPRESSED is set");
}

// Each semantics broken on purpose is caught by the check meant for it, naming where it showed.
TEST(BrokenPlugins, EachBrokenSemanticsFailsItsCheck) {
  const std::vector<std::tuple<int, std::string, std::string>> broken = {
      {9, "causality",
       "causality: in a prefill, changing keys and values after position 17 changed the output of sequence 0"},
      {10, "gqa_mapping",
       "GQA: with 8 query / 2 KV heads, sequence 0, token 0 (position 0), head 0 read the values of KV head 1"},
      {11, "sliding_window",
       "sliding window: with window 8, changing keys and values before position 18 changed the output"},
      {12, "soft_cap",
       "soft cap: with logits_soft_cap 0.5 the needle (logit ~20) still took sequence 0, token 15, head 0"},
      {13, "scale", "scale: with scale 0.001 the needle still took sequence 0, token 15, head 0"},
      {14, "pages",
       "pages: step 0 gave other outputs in shuffled, interleaved pages than in contiguous ones at sequence"},
      {15, "kv_sharing", "KV sharing: layer 1 reading layer 0's pages gave other outputs than layer 0"},
      {16, "numbers", "numbers: the uncompressed cache's output at sequence 0, token 0 (position 0), head 0 is"},
  };
  for (const auto& [kind, check, message] : broken)
    expect_caught(std::filesystem::path(ATB_TEST_BROKEN_DIR) / ("broken_" + std::to_string(kind) + ".so"), check,
                  message);
}

// A plugin that breaks one rule of the contract passes the contract's other checks; one that
// computes something else passes the contract checks (its numbers may fail several semantic checks:
// a wrong head mapping also misses the needle, for one).  Reading the wrong pages (14) also reads
// bytes never written, which host_obligations sees too.
TEST(BrokenPlugins, EachBreaksOnlyItsOwnRule) {
  const std::vector<std::string> contract = {"struct_sizes", "config_schema", "bad_arguments", "host_obligations",
                                             "cache_flags"};
  const std::vector<std::pair<int, std::string>> broken = {{3, "struct_sizes"},
                                                           {4, "config_schema"},
                                                           {5, "bad_arguments"},
                                                           {6, "host_obligations"},
                                                           {7, "host_obligations"},
                                                           {8, "cache_flags"},
                                                           {9, ""},
                                                           {10, ""},
                                                           {11, ""},
                                                           {12, ""},
                                                           {13, ""},
                                                           {14, "host_obligations"},
                                                           {15, ""},
                                                           {16, ""}};
  for (const auto& [kind, own] : broken)
    for (const std::string& check : contract) {
      if (check == own) continue;
      const auto plugin = std::filesystem::path(ATB_TEST_BROKEN_DIR) / ("broken_" + std::to_string(kind) + ".so");
      const CheckResult result = run_check(check, plugin, {});
      EXPECT_TRUE(result.passed) << plugin << " / " << check << ": " << result.message;
    }
}

TEST(BrokenPlugins, AnotherAbiMajorFailsVersionNegotiation) {
  expect_caught(std::filesystem::path(ATB_TEST_REGISTRY_DIR) / "other_major.so", "version_negotiation", "ABI");
}

TEST(BrokenPlugins, AThrowingPluginFailsTheExceptionCheck) {
  expect_caught(std::filesystem::path(ATB_TEST_REGISTRY_DIR) / "throwing.so", "no_exceptions",
                "threw an exception across the ABI");
}

TEST(Isolation, AnAbortOrExitInACheckFailsItInsteadOfTheHost) {
  const CheckResult aborted = run_isolated("aborts", []() -> CheckResult { std::abort(); });
  EXPECT_FALSE(aborted.passed);
  EXPECT_NE(aborted.message.find("signal"), std::string::npos) << aborted.message;
  const CheckResult exited = run_isolated("exits", []() -> CheckResult { std::exit(3); });
  EXPECT_FALSE(exited.passed);
  EXPECT_NE(exited.message.find("exit"), std::string::npos) << exited.message;
  const CheckResult fine = run_isolated("passes", [] { return CheckResult{"passes", true, "all good"}; });
  EXPECT_TRUE(fine.passed);
  EXPECT_EQ(fine.message, "all good");
  EXPECT_FALSE(run_check("no_such_check", ATB_TEST_REGISTRY_DIR "/throwing.so", {}).passed);
}

}  // namespace
}  // namespace atb::mock_host
