# A tenant that takes everything it can get (docs/security.md, "Fair share").
corral_add_test(NAME hostile_quota_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/hostile/quota_test.cpp
  LIBS corral_bus corral_schemas corral_test_support
  LABELS integration hostile)
add_dependencies(hostile_quota_test corral corral-executor corral-init)
