# demo_data_test.cc runs the recommender and the upgrade propensity model on the product's
# demo generator.
target_link_libraries(${target} PRIVATE fulcrum_demo fulcrum_lifecycle)
