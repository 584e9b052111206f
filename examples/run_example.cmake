# Runs one example: ctest -P with PROGRAM, ARGS (a ;-list) and EXPECT (a
# regular expression its standard output must match). Fails on a non-zero
# exit code, a time-out or output that does not match.
execute_process(COMMAND ${PROGRAM} ${ARGS}
                RESULT_VARIABLE rc
                OUTPUT_VARIABLE out
                ERROR_VARIABLE err
                TIMEOUT 100)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${rc}\n${err}")
endif()
string(REPLACE "\n" " " flat "${out}")
if(NOT flat MATCHES "${EXPECT}")
  message(FATAL_ERROR "${PROGRAM}: output does not match \"${EXPECT}\"")
endif()
