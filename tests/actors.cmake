# actors: the node/sandbox/process protocols against fakes of the ports and a real store.
add_library(corral_test_fakes STATIC ${CMAKE_CURRENT_SOURCE_DIR}/fakes/fake_ports.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/fakes/node_fixture.cpp)
target_include_directories(corral_test_fakes PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(corral_test_fakes PUBLIC corral_actors GTest::gtest)

corral_add_test(NAME actors_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/actors_test.cpp
  LIBS corral_actors corral_test_fakes
  LABELS unit)
