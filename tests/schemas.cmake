# schemas: verification, framing, ids, subjects.
corral_add_test(NAME schemas_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/schemas_test.cpp
  LIBS corral_schemas
  LABELS unit)
