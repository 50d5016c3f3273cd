# layering: the floors of docs/architecture.md, checked on the sources themselves.
corral_add_test(NAME include_floors_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/layering/include_floors.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/layering/include_floors_test.cpp
  LABELS unit)
