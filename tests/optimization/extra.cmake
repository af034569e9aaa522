# The dashboard document on the demo generator's data.
target_link_libraries(${target} PRIVATE fulcrum_demo)
# shared_models_test.cc gives each PostgreSQL case its own schema.
target_link_libraries(${target} PRIVATE PkgConfig::LIBPQ)
