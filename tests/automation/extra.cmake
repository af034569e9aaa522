# automation_tests: the audit chain (api/audit.h), real HTTP receivers (Beast/Asio) and
# PostgreSQL schemas per test (libpq).
target_link_libraries(${target} PRIVATE fulcrum_api PkgConfig::LIBPQ Boost::headers)
target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
