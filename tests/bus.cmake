# bus: the NATS client library, and the nats-server test support every integration test links.

# A real nats-server child process per test (tests/support/nats_server.hpp).
file(GLOB CORRAL_TEST_SUPPORT_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/support/*.cpp)
add_library(corral_test_support STATIC ${CORRAL_TEST_SUPPORT_SOURCES})
target_include_directories(corral_test_support PUBLIC ${CMAKE_SOURCE_DIR})
# corral's nats-server build (deploy/build.sh installs it): the server corral up runs.
target_compile_definitions(corral_test_support PRIVATE CORRAL_NATS_SERVER="${CMAKE_BINARY_DIR}/bin/corral-nats-server"
  CORRAL_BIN_DIR="${CMAKE_BINARY_DIR}/bin")
target_link_libraries(corral_test_support PUBLIC corral_bus Threads::Threads GTest::gtest)

corral_add_test(NAME bus_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bus_test.cpp
  LIBS corral_bus corral_test_support
  LABELS integration)

corral_add_test(NAME bus_jetstream_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bus_jetstream_test.cpp
  LIBS corral_bus corral_test_support
  LABELS integration)
