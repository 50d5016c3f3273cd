# usage: metering. The usage records of the store (real RocksDB in a temp dir) and the usage
# meter actor (fakes of the runtime and clock, a real store).
corral_add_test(NAME usage_store_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/usage_store_test.cpp
  LIBS corral_storage RocksDB::rocksdb
  LABELS unit)
