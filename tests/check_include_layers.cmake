# Which way the code may depend, checked on every #include of a project header (cmake -P, run by
# ctest as include_layers_point_downward):
#   sdk/                     the ABI and the SDK's own headers only (atb/abi.h, atb/host, atb/kit ...)
#   plugin/common/           the SDK and atb/plugin/ (what the plugins share, CPU and CUDA): never a
#                            TurboQuant header (tq/), never a plugin's own header
#   plugin/reference/        the SDK and plugin/common
#   plugin/turboquant/codec/ the ABI's plain headers (and cpu_features) and tq/: no plugin kit, no
#                            plugin/common
#   plugin/turboquant/       the SDK, plugin/common and tq/ (the plugin and its config; cpu/: the
#                            CPU backend; cuda/: its row format for the shared CUDA kernels)
#   mock_host/               the SDK and atb/mock_host/ (its tool also the command-line helpers)
#   examples/                the SDK, tq/ (the tools report codec figures), atb/cli and atb/engine
# Quoted includes must stay inside the includer's own component (no "../" out of it), except in
# tests/.  Usage: cmake -DSOURCE_DIR=<repo root> -P check_include_layers.cmake
#
# PENDING lists known wrong-way includes, each "file -> header" (none today).  An include found and
# not listed fails; a listed one no longer found fails too, so the list can only shrink.
set(PENDING)

set(SDK_HEADERS "atb/abi\\.h|atb/status\\.hpp|atb/half\\.hpp|atb/cpu_features\\.hpp|atb/struct_io\\.hpp|atb/host/|atb/kit/")
set(RULES
  # path prefix                 allowed project headers (regex on the include path)
  "sdk/|^(${SDK_HEADERS})"
  "plugin/common/|^(${SDK_HEADERS}|atb/plugin/)"
  "plugin/reference/|^(${SDK_HEADERS}|atb/plugin/)"
  "plugin/turboquant/codec/|^(atb/abi\\.h|atb/status\\.hpp|atb/half\\.hpp|atb/cpu_features\\.hpp|tq/)"
  "plugin/turboquant/|^(${SDK_HEADERS}|atb/plugin/|tq/)"
  "mock_host/tools/|^(${SDK_HEADERS}|atb/mock_host/|atb/cli/)"
  "mock_host/|^(${SDK_HEADERS}|atb/mock_host/)"
  "examples/|^(${SDK_HEADERS}|atb/cli/|atb/engine/|tq/)")
set(PROJECT_HEADER "^(atb/|tq/)")

cmake_minimum_required(VERSION 3.22)
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "pass -DSOURCE_DIR=<repository root>")
endif()
file(GLOB_RECURSE sources RELATIVE ${SOURCE_DIR}
  ${SOURCE_DIR}/sdk/* ${SOURCE_DIR}/plugin/* ${SOURCE_DIR}/mock_host/* ${SOURCE_DIR}/examples/*)
set(found_pending)
set(violations)
foreach(source IN LISTS sources)
  if(NOT source MATCHES "\\.(c|h|cpp|hpp|cu|cuh)$")
    continue()
  endif()
  set(allowed "")
  foreach(rule IN LISTS RULES)
    string(REPLACE "|^" ";^" parts "${rule}")
    list(GET parts 0 prefix)
    list(GET parts 1 pattern)
    string(FIND "${source}" "${prefix}" at)
    if(at EQUAL 0)
      set(allowed "${pattern}")
      break()
    endif()
  endforeach()
  file(STRINGS ${SOURCE_DIR}/${source} lines REGEX "^[ \t]*#[ \t]*include")
  foreach(line IN LISTS lines)
    if(line MATCHES "#[ \t]*include[ \t]*<([^>]+)>")
      set(header "${CMAKE_MATCH_1}")
      if(NOT header MATCHES "${PROJECT_HEADER}" OR header MATCHES "${allowed}")
        continue()
      endif()
    elseif(line MATCHES "#[ \t]*include[ \t]*\"([^\"]+)\"")
      set(header "${CMAKE_MATCH_1}")
      if(NOT header MATCHES "\\.\\./")
        continue()
      endif()
    else()
      continue()
    endif()
    set(edge "${source} -> ${header}")
    if(edge IN_LIST PENDING)
      list(APPEND found_pending "${edge}")
    else()
      list(APPEND violations "${edge}")
    endif()
  endforeach()
endforeach()

foreach(edge IN LISTS PENDING)
  if(NOT edge IN_LIST found_pending)
    list(APPEND violations "${edge} is listed as pending but no longer exists: remove it from PENDING")
  endif()
endforeach()
if(violations)
  list(JOIN violations "\n  " report)
  message(FATAL_ERROR "includes that go the wrong way (see the layers at the top of check_include_layers.cmake):\n  ${report}")
endif()
list(LENGTH PENDING pending_count)
message(STATUS "every include points downward (${pending_count} pending wrong-way include listed)")
