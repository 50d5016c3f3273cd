# jobs: the executor's job runner (run requests, fresh/strict isolation) and the JetStream queue,
# against a real nats-server (JetStream), corral-executor and runsc; with chaos (kill -9).
if(TARGET corral-executor)
  corral_add_test(NAME jobs_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/jobs_test.cpp
    LIBS corral_bus corral_schemas corral_test_support
    LABELS integration)
  add_dependencies(jobs_test corral corral-executor corral-init)
  # Jobs are written with designated initializers that leave the rest at its default.
  target_compile_options(jobs_test PRIVATE -Wno-missing-field-initializers)
endif()
