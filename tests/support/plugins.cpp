#include "plugins.hpp"

#include <gtest/gtest.h>

namespace atb::test {

const host::Registry& build_registry() {
  static const host::Registry registry = host::Registry::scan({ATB_TEST_PLUGIN_DIR}, false);
  return registry;
}

const host::Plugin* build_plugin(const std::string& backend_name) {
  auto selected = build_registry().select(backend_name);
  if (!selected) {
    ADD_FAILURE() << selected.error().message();
    return nullptr;
  }
  return *selected;
}

Expected<host::Backend> create_backend(const std::string& backend_name, const atb_layer_spec& spec,
                                       const std::string& config_json) {
  const host::Plugin* plugin = build_plugin(backend_name);
  if (plugin == nullptr) return Status::invalid("no plugin '" + backend_name + "' in " + ATB_TEST_PLUGIN_DIR);
  return plugin->create_backend(spec, config_json);
}

}  // namespace atb::test
