# actors: the node/sandbox/process protocols against fakes of the ports and a real store.
add_library(corral_test_fakes STATIC ${CMAKE_CURRENT_SOURCE_DIR}/fakes/fake_ports.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/fakes/node_fixture.cpp)
target_include_directories(corral_test_fakes PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(corral_test_fakes PUBLIC corral_actors corral_request_decode GTest::gtest)

# One executable, a file per concern of the actors (tests/actors_fixture.hpp is what they share).
corral_add_test(NAME actors_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sandbox_lifecycle_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/sandbox_exec_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/sandbox_queries_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/sandbox_probe_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/sandbox_warm_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/node_test.cpp
  LIBS corral_actors corral_test_fakes
  LABELS unit)

# The executor's bridge decoding of requests into the actors' verbs.
corral_add_test(NAME bridge_decode_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bridge_decode_test.cpp
  LIBS corral_request_decode
  LABELS unit)
