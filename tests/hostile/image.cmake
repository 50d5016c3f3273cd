# What of the host a sandbox sees (docs/security.md, "Smaller boundaries").
corral_add_test(NAME hostile_image_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/hostile/image_test.cpp
  LIBS corral_bus corral_schemas corral_test_support
  LABELS integration hostile)
add_dependencies(hostile_image_test corral corral-executor corral-init)
