# warm_pool: the warm pool and the per-node create subject against a real nats-server and a
# real corral-executor (--warm-pool 2) running runsc sandboxes.
if(TARGET corral-executor)
  corral_add_test(NAME warm_pool_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/warm_pool_test.cpp
    LIBS corral_bus corral_schemas corral_test_support
    LABELS integration)
  add_dependencies(warm_pool_test corral corral-executor corral-init)
endif()
