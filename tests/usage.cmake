# usage: metering. The usage records of the store (real RocksDB in a temp dir) and the usage
# meter actor (fakes of the runtime and clock, a real store).
corral_add_test(NAME usage_store_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/usage_store_test.cpp
  LIBS corral_storage RocksDB::rocksdb
  LABELS unit)

# End to end: the CLI against a real nats-server and corral-executor running runsc sandboxes.
if(TARGET corral-executor)
  corral_add_test(NAME usage_e2e_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/usage_e2e_test.cpp
    LIBS corral_bus corral_schemas corral_test_support
    LABELS integration)
  add_dependencies(usage_e2e_test corral corral-executor corral-init)
endif()

corral_add_test(NAME usage_actor_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/usage_actor_test.cpp
  LIBS corral_actors corral_test_fakes
  LABELS unit)
