# `tq generate` writes the text alone to stdout and its figures to stderr, so that its output can be
# piped.  Skips (ctest SKIP_REGULAR_EXPRESSION "SKIPPED:") where ../shared/models is absent.
#   cmake -DTQ=<tq> -DSHARED_DIR=<../shared> -P check_generate_stdout.cmake
set(model ${SHARED_DIR}/models/shakespeare_char_17M.bin)
set(tokenizer ${SHARED_DIR}/models/tokenizer.bin)
if(NOT EXISTS ${model} OR NOT EXISTS ${tokenizer})
  message("SKIPPED: ${model} or ${tokenizer} is absent (the shared model is never committed)")
  return()
endif()
set(prompt "ROMEO:")
execute_process(
  COMMAND ${TQ} generate --model ${model} --tokenizer ${tokenizer} --prompt ${prompt} --steps 24 --temperature 0
          --attention-backend reference
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "exit status ${rc}\nstderr:\n${err}")
endif()
string(FIND "${out}" "${prompt}" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "stdout does not start with the prompt:\n${out}")
endif()
string(LENGTH "${out}" length)
if(length LESS 26)
  message(FATAL_ERROR "stdout holds no generated text:\n${out}")
endif()
foreach(figure "tokens in" "KV cache")
  string(FIND "${out}" "${figure}" in_out)
  string(FIND "${err}" "${figure}" in_err)
  if(NOT in_out EQUAL -1 OR in_err EQUAL -1)
    message(FATAL_ERROR "'${figure}' belongs on stderr only\nstdout:\n${out}\nstderr:\n${err}")
  endif()
endforeach()
message(STATUS "stdout: the text only (${length} bytes); the figures on stderr")
