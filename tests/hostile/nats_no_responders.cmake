# No-responders through a service import (corral's nats-server build, deploy/build-nats-server.sh):
# the patched server answers at once; Debian's, the control, lets the requester time out.
corral_add_test(NAME nats_no_responders_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/hostile/nats_no_responders_test.cpp
  LIBS corral_bus corral_test_support
  LABELS integration hostile)
target_compile_definitions(nats_no_responders_test PRIVATE CORRAL_STOCK_NATS_SERVER="${NATS_SERVER}")
