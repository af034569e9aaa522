# Runs one libFuzzer harness for SECONDS over SEED_DIR, writing new inputs to WORK_DIR and
# crash inputs to ARTIFACTS; fails when the harness finds a crash, leak or timeout.
file(MAKE_DIRECTORY ${WORK_DIR} ${ARTIFACTS})
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048
    -max_len=65536 -print_final_stats=1 -artifact_prefix=${ARTIFACTS} ${WORK_DIR} ${SEED_DIR}
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${FUZZER} found a problem (exit ${result}); the input is in ${ARTIFACTS}")
endif()
