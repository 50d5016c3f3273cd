# Hostile tenants against corral-gateway (docs/security.md, "A tenant vs. the gateway"): stdin
# that is never read, every stream slot, clients that leave, bodies without a token, the
# descriptor limit, /metrics, a file larger than one response. A real gateway, nats-server,
# corral-executor and runsc; CORRAL_TEST_GATEWAY_BIN runs them against another gateway binary.
if(TARGET corral-executor AND TARGET corral-gateway)
  find_package(Boost 1.74 REQUIRED)
  find_package(nlohmann_json 3 REQUIRED)
  corral_add_test(NAME hostile_gateway_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/hostile/gateway_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/gateway_harness.cpp
    LIBS corral_gateway corral_schemas corral_test_support Boost::headers nlohmann_json::nlohmann_json
    LABELS integration hostile)
  add_dependencies(hostile_gateway_test corral corral-executor corral-init corral-gateway)
  if(CORRAL_SANITIZE)
    # As gateway_test: GCC's -Wmaybe-uninitialized misfires inside Boost.Beast's parsers.
    target_compile_options(hostile_gateway_test PRIVATE -Wno-maybe-uninitialized)
  endif()
endif()
