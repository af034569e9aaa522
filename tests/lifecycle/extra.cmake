# Retention tests on the demo generator's data (planted churners and abandonments).
if(TARGET fulcrum_demo)
  target_link_libraries(${target} PRIVATE fulcrum_demo)
  target_compile_definitions(${target} PRIVATE FULCRUM_HAVE_DEMO=1)
endif()
