# sweep: `corral sweep`. The unit suite (the library client/sweep, split as it is) needs no
# executor; the integration suite runs the sample problems (examples/sweep/) against a real
# nats-server and corral-executor, --direct and --queue, and resumes a cut output file.
find_package(nlohmann_json 3 REQUIRED)
corral_add_test(NAME sweep_unit_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sweep_options_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/sweep_program_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/sweep_verdict_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/sweep_job_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/sweep_out_file_test.cpp
          ${CMAKE_CURRENT_SOURCE_DIR}/sweep_runner_test.cpp
  LIBS corral_sweep nlohmann_json::nlohmann_json
  LABELS unit)

if(TARGET corral-executor)
  corral_add_test(NAME sweep_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sweep_direct_test.cpp
            ${CMAKE_CURRENT_SOURCE_DIR}/sweep_queue_test.cpp
    LIBS corral_test_support nlohmann_json::nlohmann_json
    LABELS integration)
  add_dependencies(sweep_test corral corral-executor corral-init)
endif()
