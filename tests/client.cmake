# client: the protocol client's pure parts (no NATS): the output sequencer.
corral_add_test(NAME output_sequencer_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/output_sequencer_test.cpp
  LIBS corral_client
  LABELS unit)
