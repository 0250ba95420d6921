// The registry against real files built in the tree: good plugins, non-plugins, corrupt libraries,
// a library without the entry symbol, another ABI major, duplicate names, a throwing plugin.
#include <gtest/gtest.h>

#include <atb/host/logging.hpp>
#include <atb/host/paged_kv.hpp>
#include <atb/host/registry.hpp>
#include <atb/struct_io.hpp>

#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace atb::host {
namespace {
namespace fs = std::filesystem;

const fs::path kRegistryDir = ATB_TEST_REGISTRY_DIR;
const fs::path kPluginDir = ATB_TEST_PLUGIN_DIR;

const Diagnostic* find_diagnostic(const Registry& registry, const std::string& file_name) {
  for (const auto& diagnostic : registry.diagnostics())
    if (diagnostic.path.filename() == file_name) return &diagnostic;
  return nullptr;
}

TEST(Registry, FindsTheBuildsPlugins) {
  const auto registry = Registry::scan({kPluginDir}, false);
  auto selected = registry.select("reference");
  ASSERT_TRUE(selected) << selected.error().message();
  const PluginInfo& info = (*selected)->info();
  EXPECT_EQ(info.abi_major, unsigned(ATB_ABI_VERSION_MAJOR));
  EXPECT_FALSE(info.plugin_version.empty());
  EXPECT_FALSE(info.description.empty());
  EXPECT_TRUE(info.device_mask & ATB_BIT(ATB_DEVICE_CPU));
  EXPECT_FALSE(info.head_sizes.empty());
  EXPECT_TRUE(std::is_sorted(info.head_sizes.begin(), info.head_sizes.end()));
}

TEST(Registry, MissingDirectoryIsAWarningNotFatal) {
  const auto registry = Registry::scan({"/nonexistent/atb/plugins", kPluginDir}, false);
  const Diagnostic* missing = find_diagnostic(registry, "plugins");
  ASSERT_NE(missing, nullptr);
  EXPECT_EQ(missing->severity, Diagnostic::Severity::kWarning);
  EXPECT_NE(missing->message.find("does not exist"), std::string::npos) << missing->message;
  EXPECT_TRUE(registry.select("reference")) << "the next directory is still scanned";
}

TEST(Registry, AFileGivenAsDirectoryIsAWarning) {
  const fs::path file = kRegistryDir / "README.txt";
  const auto registry = Registry::scan({file}, false);
  ASSERT_EQ(registry.diagnostics().size(), 1u);
  EXPECT_NE(registry.diagnostics()[0].message.find("is not a directory"), std::string::npos);
}

TEST(Registry, UnreadableDirectoryIsAWarningNotFatal) {
  // Permissions do not bind root, so the scan runs in a child that has dropped to 'nobody'.
  const fs::path locked = fs::temp_directory_path() / ("atb_locked_" + std::to_string(getpid()));
  fs::create_directories(locked);
  ASSERT_EQ(chmod(locked.c_str(), 0), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (geteuid() == 0 && setuid(65534) != 0) _exit(10);
    const auto registry = Registry::scan({locked}, false);
    if (registry.diagnostics().size() != 1) _exit(11);
    const auto& message = registry.diagnostics()[0].message;
    _exit(message.find("cannot be read") != std::string::npos ? 0 : 12);
  }
  int status = 0;
  waitpid(child, &status, 0);
  chmod(locked.c_str(), 0700);
  fs::remove(locked);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: could not drop privileges, 11: not one diagnostic, 12: wrong message";
}

TEST(Registry, NonPluginFilesAreIgnoredQuietly) {
  const auto registry = Registry::scan({kRegistryDir}, false);
  const Diagnostic* readme = find_diagnostic(registry, "README.txt");
  ASSERT_NE(readme, nullptr);
  EXPECT_EQ(readme->severity, Diagnostic::Severity::kDebug);
  const Diagnostic* nested = find_diagnostic(registry, "nested");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->severity, Diagnostic::Severity::kDebug);
}

TEST(Registry, CorruptLibraryCarriesDlerrorText) {
  const auto registry = Registry::scan({kRegistryDir}, false);
  for (const char* name : {"not_elf.so", "empty.so"}) {
    const Diagnostic* corrupt = find_diagnostic(registry, name);
    ASSERT_NE(corrupt, nullptr) << name;
    EXPECT_EQ(corrupt->severity, Diagnostic::Severity::kWarning);
    EXPECT_NE(corrupt->message.find("dlopen"), std::string::npos) << corrupt->message;
    EXPECT_TRUE(corrupt->message.find("invalid ELF header") != std::string::npos ||
                corrupt->message.find("file too short") != std::string::npos)
        << corrupt->message;
  }
}

TEST(Registry, LibraryWithoutEntrySymbolIsNotAPlugin) {
  const auto registry = Registry::scan({kRegistryDir}, false);
  const Diagnostic* no_entry = find_diagnostic(registry, "no_entry.so");
  ASSERT_NE(no_entry, nullptr);
  EXPECT_NE(no_entry->message.find("has no 'atb_get_api' symbol"), std::string::npos) << no_entry->message;
}

TEST(Registry, OtherAbiMajorIsRefusedNamingBothVersions) {
  const auto registry = Registry::scan({kRegistryDir}, false);
  const Diagnostic* refusing = find_diagnostic(registry, "other_major.so");
  ASSERT_NE(refusing, nullptr);
  EXPECT_NE(refusing->message.find("2.3"), std::string::npos) << refusing->message;
  const std::string host_version = std::to_string(ATB_ABI_VERSION_MAJOR) + "." + std::to_string(ATB_ABI_VERSION_MINOR);
  EXPECT_NE(refusing->message.find(host_version), std::string::npos) << refusing->message;
  const Diagnostic* accepting = find_diagnostic(registry, "other_major_accepts.so");
  ASSERT_NE(accepting, nullptr);
  EXPECT_NE(accepting->message.find("implements ABI 2.3 but this host speaks " + host_version), std::string::npos)
      << accepting->message;
}

TEST(Registry, DuplicateNamesKeepTheFirstWithAWarning) {
  const auto registry = Registry::scan({kRegistryDir}, false);
  auto twin = registry.select("twin");
  ASSERT_TRUE(twin) << twin.error().message();
  EXPECT_EQ((*twin)->path().filename(), "twin_a.so");
  EXPECT_EQ((*twin)->info().plugin_version, "1.0.0-a");
  const Diagnostic* duplicate = find_diagnostic(registry, "twin_b.so");
  ASSERT_NE(duplicate, nullptr);
  EXPECT_EQ(duplicate->severity, Diagnostic::Severity::kWarning);
  EXPECT_NE(duplicate->message.find("registered first from"), std::string::npos) << duplicate->message;
  EXPECT_NE(duplicate->message.find("twin_a.so"), std::string::npos) << duplicate->message;

  // Directory order decides across directories: the build's reference comes first here.
  const auto ordered = Registry::scan({kPluginDir, kRegistryDir}, false);
  EXPECT_EQ(ordered.backend_names().front(), "reference");
}

TEST(Registry, UnknownNameListsTheAvailableOnes) {
  const auto registry = Registry::scan({kPluginDir, kRegistryDir}, false);
  auto missing = registry.select("turbo");
  ASSERT_FALSE(missing);
  const std::string& message = missing.error().message();
  EXPECT_NE(message.find("no backend named 'turbo'"), std::string::npos) << message;
  EXPECT_NE(message.find("reference"), std::string::npos) << message;
  EXPECT_NE(message.find("twin"), std::string::npos) << message;
}

TEST(Registry, EnvironmentVariableAddsDirectories) {
  ASSERT_EQ(setenv(kPluginPathEnv, ("/nonexistent:" + kPluginDir.string()).c_str(), 1), 0);
  const auto registry = Registry::scan({}, true);
  unsetenv(kPluginPathEnv);
  EXPECT_TRUE(registry.select("reference"));
  EXPECT_NE(find_diagnostic(registry, "nonexistent"), nullptr);
}

TEST(Registry, SplitsPathLists) {
  const auto paths = Registry::split_path_list("a::b/c:");
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(paths[0], "a");
  EXPECT_EQ(paths[1], "b/c");
}

TEST(Registry, AnExceptionThrownByAPluginBecomesAStatus) {
  const auto registry = Registry::scan({kRegistryDir}, false);
  auto throwing = registry.select("throwing");
  ASSERT_TRUE(throwing) << throwing.error().message();
  atb_layer_spec spec = make_versioned<atb_layer_spec>();
  auto backend = (*throwing)->create_backend(spec, "{}");
  ASSERT_FALSE(backend);
  EXPECT_EQ(backend.error().code(), ATB_ERR_INTERNAL);
  EXPECT_NE(backend.error().message().find("threw an exception across the ABI"), std::string::npos);
  EXPECT_NE(backend.error().message().find("create_backend exploded"), std::string::npos);
}

TEST(Registry, LibraryStaysOpenWhileABackendLives) {
  const fs::path library = kRegistryDir / "twin_a.so";
  std::optional<Backend> backend;
  {
    const auto registry = Registry::scan({kRegistryDir}, false);
    const atb_layer_spec spec = standard_layer_spec(1, 1, 64, ATB_DTYPE_F32, 16);
    auto created = (*registry.select("twin"))->create_backend(spec, "{}");
    ASSERT_TRUE(created) << created.error().message();
    backend.emplace(std::move(*created));
  }
  // The registry and its Plugin objects are gone; the backend still holds the library.
  void* probe = dlopen(library.c_str(), RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(probe, nullptr) << "library unloaded while a backend was alive";
  dlclose(probe);
  auto spec = backend->kv_cache_spec();
  ASSERT_TRUE(spec) << spec.error().message();
  EXPECT_EQ(spec->page_bytes, 16u * 1 * (64 + 64) * 4);
  backend.reset();
  probe = dlopen(library.c_str(), RTLD_NOW | RTLD_NOLOAD);
  EXPECT_EQ(probe, nullptr) << "library still loaded after its last backend was destroyed";
  if (probe != nullptr) dlclose(probe);
}

TEST(Logging, LevelsAreValidated) {
  EXPECT_TRUE(set_log_level("debug"));
  EXPECT_EQ(current_abi_log_level(), ATB_LOG_DEBUG);
  auto bad = set_log_level("loud");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("'loud' is not a level"), std::string::npos);
  EXPECT_TRUE(set_log_level("warn"));
}

}  // namespace
}  // namespace atb::host
