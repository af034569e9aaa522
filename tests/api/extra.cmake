# api_tests reach into the SQLite file directly (tamper tests) and include Beast/Asio.
target_link_libraries(${target} PRIVATE SQLite::SQLite3)
target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
if(TARGET fulcrum_experiments)
  target_compile_definitions(${target} PRIVATE FULCRUM_HAVE_EXPERIMENTS=1)
endif()
