# Root code inside a sandbox against corral-init: its channel to the executor, its process, its
# memory, the files API's view (init_boundary_test); process trees that end whole on a timeout,
# an output_limit kill, an executor restart and a terminate (init_tree_test). Real runsc.
if(TARGET corral-executor)
  foreach(name init_boundary_test init_tree_test)
    corral_add_test(NAME ${name}
      SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/hostile/${name}.cpp
      LIBS corral_bus corral_schemas corral_test_support
      LABELS integration)
    add_dependencies(${name} corral corral-executor corral-init)
  endforeach()
endif()
