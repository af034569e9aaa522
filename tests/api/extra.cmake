# api_tests reach into the SQLite file directly (tamper tests) and include Beast/Asio.
target_link_libraries(${target} PRIVATE SQLite::SQLite3)
target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
foreach(engine experiments flags recommend lifecycle sunset automation)
  if(TARGET fulcrum_${engine})
    string(TOUPPER ${engine} engine_upper)
    target_compile_definitions(${target} PRIVATE FULCRUM_HAVE_${engine_upper}=1)
  endif()
endforeach()
