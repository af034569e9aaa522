# Integration tests drive the real `fulcrum` binary (replicas_test.cc starts two servers on
# one PostgreSQL) and talk to PostgreSQL directly for per-test schemas.
add_dependencies(${target} fulcrum)
target_link_libraries(${target} PRIVATE PkgConfig::LIBPQ nlohmann_json::nlohmann_json)
# webhook_restart_test.cc: a Beast webhook receiver (tests/automation/webhook_receiver.h).
target_link_libraries(${target} PRIVATE Boost::headers)
target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
# faults_test.cc opens the stores the servers wrote (SQLite and PostgreSQL) to check them.
target_link_libraries(${target} PRIVATE fulcrum_store)
