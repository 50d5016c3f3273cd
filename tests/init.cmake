# corral-init: the sandbox's PID 1, tested as a black box (the real static binary as a child).
corral_add_test(NAME init_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/init_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/init_harness_unsafe.cpp
  LIBS corral_schemas
  LABELS unit)
add_dependencies(init_test corral-init)
