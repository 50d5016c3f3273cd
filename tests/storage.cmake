# storage: the typed store, tested against a real RocksDB in a temp dir per test.

# The child that store_crash_test kills with SIGKILL mid-write (docs/promises.md P10).
add_executable(store_crash_writer ${CMAKE_CURRENT_SOURCE_DIR}/store_crash_writer.cpp)
target_link_libraries(store_crash_writer PRIVATE corral_storage)

corral_add_test(NAME store_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/store_test.cpp
  LIBS corral_storage RocksDB::rocksdb
  LABELS unit)
add_dependencies(store_test store_crash_writer)
target_compile_definitions(store_test PRIVATE
  CORRAL_STORE_CRASH_WRITER="$<TARGET_FILE:store_crash_writer>")
# The record tests build FlatBuffers by hand (bad versions, enums out of range) with the
# generated record header, which is otherwise private to corral_storage.
target_include_directories(store_test PRIVATE ${CMAKE_BINARY_DIR}/storage/generated)
