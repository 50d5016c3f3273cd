# `corral up` killed while it starts (docs/security.md, "Smaller boundaries").
corral_add_test(NAME hostile_up_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/hostile/up_test.cpp
  LIBS corral_bus corral_test_support
  LABELS integration hostile)
add_dependencies(hostile_up_test corral corral-executor corral-init corral-gateway)
