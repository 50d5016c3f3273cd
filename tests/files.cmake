# Files (docs/protocol.md, "Files"): corral-init's file operations, the sandbox's file_ops against the fake
# runtime, and `corral fs` end to end on real runsc sandboxes.
corral_add_test(NAME files_init_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/files_init_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/init_harness_unsafe.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/init_commands.cpp
  LIBS corral_schemas
  LABELS unit)
add_dependencies(files_init_test corral-init)

corral_add_test(NAME files_actors_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/files_actors_test.cpp
  LIBS corral_actors corral_test_fakes
  LABELS unit)

if(TARGET corral-executor)
  corral_add_test(NAME files_e2e_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/files_e2e_test.cpp
    LIBS corral_bus corral_schemas corral_test_support
    LABELS integration)
  add_dependencies(files_e2e_test corral corral-executor corral-init)
endif()
