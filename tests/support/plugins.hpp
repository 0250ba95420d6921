// The plugins this build produced, loaded once through the SDK registry (the path engines use).
#pragma once

#include <atb/host/registry.hpp>

#include <string>

namespace atb::test {

// The registry over the build's plugin directory (ATB_TEST_PLUGIN_DIR, set by CMake).
const host::Registry& build_registry();

// The named plugin; fails the calling test (via ADD_FAILURE) and returns nullptr when absent.
const host::Plugin* build_plugin(const std::string& backend_name);

// Creates a backend or fails the test with the plugin's message.
Expected<host::Backend> create_backend(const std::string& backend_name, const atb_layer_spec& spec,
                                       const std::string& config_json);

}  // namespace atb::test
