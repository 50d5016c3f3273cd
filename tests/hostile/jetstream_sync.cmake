# JetStream fsyncs before it acknowledges (corral's nats-server build, deploy/build-nats-server.sh):
# observed with strace on the patched server, and on Debian's as the control.
corral_add_test(NAME jetstream_sync_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/hostile/jetstream_sync_test.cpp
  LIBS corral_bus corral_test_support
  LABELS integration hostile)
target_compile_definitions(jetstream_sync_test PRIVATE CORRAL_STOCK_NATS_SERVER="${NATS_SERVER}")
