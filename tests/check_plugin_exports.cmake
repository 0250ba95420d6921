# ctest -P script: the plugin PLUGIN exports exactly one dynamic symbol, atb_get_api (nothing of the
# C++ runtime, spdlog or fmt).  Run as: cmake -DNM=... -DPLUGIN=... -P check_plugin_exports.cmake
execute_process(COMMAND ${NM} -D --defined-only ${PLUGIN} OUTPUT_VARIABLE symbols RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "nm failed on ${PLUGIN}")
endif()
string(REGEX REPLACE "[0-9a-fA-F]+ [A-Za-z] " "" names "${symbols}")
string(STRIP "${names}" names)
if(NOT names STREQUAL "atb_get_api")
  message(FATAL_ERROR "${PLUGIN} exports more than atb_get_api:\n${symbols}")
endif()
message(STATUS "${PLUGIN}: exports only atb_get_api")
