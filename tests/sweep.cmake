# sweep: `corral sweep`. The unit suite needs no executor.
find_package(nlohmann_json 3 REQUIRED)
corral_add_test(NAME sweep_unit_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sweep_unit_test.cpp
  LIBS corral_sweep nlohmann_json::nlohmann_json
  LABELS unit)
