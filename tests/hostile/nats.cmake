# A tenant with a raw NATS client against a real `corral up` (docs/security.md, "NATS identities").
corral_add_test(NAME hostile_nats_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/hostile/nats_test.cpp
  LIBS corral_bus corral_schemas corral_test_support
  LABELS integration hostile)
add_dependencies(hostile_nats_test corral corral-executor corral-init corral-gateway)

# NATS over TLS between hosts (docs/operations.md): the bus's TLS options.
corral_add_test(NAME hostile_nats_tls_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/hostile/nats_tls_test.cpp
  LIBS corral_bus corral_test_support
  LABELS integration hostile)
