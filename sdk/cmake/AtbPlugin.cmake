# atb_add_plugin(<target> OUTPUT_NAME <file stem> [OUTPUT_DIRECTORY <dir>] SOURCES ...)
#
# Builds an attention-backend plugin: a MODULE library named <file stem>.so whose only exported
# symbol is atb_get_api (hidden visibility plus a linker version script), so nothing of the C++
# runtime, spdlog or fmt leaks into the host's symbol namespace.
set(ATB_PLUGIN_EXPORTS_MAP ${CMAKE_CURRENT_LIST_DIR}/atb_plugin_exports.map CACHE INTERNAL "")

function(atb_add_plugin target)
  cmake_parse_arguments(ARG "" "OUTPUT_NAME;OUTPUT_DIRECTORY" "SOURCES" ${ARGN})
  add_library(${target} MODULE ${ARG_SOURCES})
  if(NOT ARG_OUTPUT_NAME)
    set(ARG_OUTPUT_NAME ${target})
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${ARG_OUTPUT_NAME}
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  endif()
  target_link_options(${target} PRIVATE "LINKER:--version-script=${ATB_PLUGIN_EXPORTS_MAP}")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${ATB_PLUGIN_EXPORTS_MAP})
endfunction()

# A static library of a plugin's CUDA code: position-independent, hidden symbols (the plugin
# exports only its entry), project warnings, and source lines in the kernels' debug sections (no
# effect on the code) so that profiles map instructions to lines.
function(atb_set_cuda_library_properties target)
  set_target_properties(${target} PROPERTIES
    POSITION_INDEPENDENT_CODE ON CXX_VISIBILITY_PRESET hidden CUDA_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  atb_set_warnings(${target})
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo>)
endfunction()
