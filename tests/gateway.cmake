# gateway: corral-gateway over HTTP in front of a real nats-server and corral-executor.
if(TARGET corral-executor AND TARGET corral-gateway)
  find_package(Boost 1.74 REQUIRED)
  find_package(nlohmann_json 3 REQUIRED)
  corral_add_test(NAME gateway_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/gateway_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/gateway_harness.cpp
    LIBS corral_gateway corral_schemas corral_test_support Boost::headers nlohmann_json::nlohmann_json
    LABELS integration)
  add_dependencies(gateway_test corral corral-executor corral-init corral-gateway)
  if(CORRAL_SANITIZE)
    # Under ASan, GCC's -Wmaybe-uninitialized misfires inside Boost.Beast's response parser
    # (a boost::optional in basic_parser.hpp), which only the test's HTTP client instantiates.
    target_compile_options(gateway_test PRIVATE -Wno-maybe-uninitialized)
  endif()
endif()

# The token store alone (no processes).
if(TARGET corral_gateway)
  corral_add_test(NAME gateway_tokens_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/gateway_tokens_test.cpp
    LIBS corral_gateway)
endif()

# The API in process in front of a nats-server (no executor): query values, NATS links.
if(TARGET corral_gateway)
  corral_add_test(NAME gateway_api_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/gateway_api_test.cpp
    LIBS corral_gateway corral_test_support
    LABELS integration)
endif()
