# e2e: the CLI against a real nats-server and a real corral-executor running runsc sandboxes.
if(TARGET corral-executor)
  corral_add_test(NAME e2e_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/e2e_test.cpp
    LIBS corral_bus corral_schemas corral_test_support
    LABELS integration)
  add_dependencies(e2e_test corral corral-executor corral-init)
endif()
