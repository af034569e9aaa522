target_link_libraries(${target} PRIVATE PkgConfig::LIBPQ)  # store_conformance_test.cc
