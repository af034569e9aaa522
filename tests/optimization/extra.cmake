# The dashboard document on the demo generator's data.
target_link_libraries(${target} PRIVATE fulcrum_demo)
