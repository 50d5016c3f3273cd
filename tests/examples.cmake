# examples: each program in examples/ run as a subprocess against a real corral-gateway,
# nats-server and corral-executor; and the Python client's stream resume across gateway restarts.
if(TARGET corral-executor AND TARGET corral-gateway)
  find_package(Boost 1.74 REQUIRED)
  find_package(nlohmann_json 3 REQUIRED)
  corral_add_test(NAME examples_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/examples_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/gateway_harness.cpp
    LIBS corral_gateway corral_schemas corral_test_support Boost::headers nlohmann_json::nlohmann_json
    LABELS integration)
  add_dependencies(examples_test corral corral-executor corral-init corral-gateway)
  if(CORRAL_SANITIZE)
    # As gateway_test: GCC's -Wmaybe-uninitialized misfires inside Boost.Beast's response parser.
    target_compile_options(examples_test PRIVATE -Wno-maybe-uninitialized)
  endif()
endif()
