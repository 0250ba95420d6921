# Runs COMMAND (a ;-list) and fails unless its stdout, all of it, is one JSON object: a tool's --json
# output must pipe into a JSON reader with nothing before or after it.
#   cmake -DCOMMAND="tq;bench;--json;..." -P check_json_stdout.cmake
execute_process(COMMAND ${COMMAND} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "exit status ${rc}\nstderr:\n${err}")
endif()
string(STRIP "${out}" out)
string(JSON type ERROR_VARIABLE problem TYPE "${out}")
if(problem OR NOT type STREQUAL "OBJECT")
  message(FATAL_ERROR "stdout is not one JSON object (${problem}):\n${out}")
endif()
string(SUBSTRING "${out}" 0 1 first)
if(NOT first STREQUAL "{")
  message(FATAL_ERROR "stdout has text before the JSON object:\n${out}")
endif()
message(STATUS "stdout is one JSON object")
