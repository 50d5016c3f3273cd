# cli: the command line as people use it — help, version, usage errors, --json outputs, a pty
# exec that follows terminal resizes (integration: a real nats-server and corral-executor), and
# the bash completion (cli/completion/corral.bash).
find_package(nlohmann_json 3 REQUIRED)
if(TARGET corral-executor)
  corral_add_test(NAME cli_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/cli_test.cpp
    LIBS corral_client corral_test_support nlohmann_json::nlohmann_json
    LABELS integration)
  target_compile_definitions(cli_test PRIVATE CORRAL_EXPECTED_VERSION="${PROJECT_VERSION}"
                             CORRAL_EXPECTED_BUILD_TYPE="${CMAKE_BUILD_TYPE}")
  add_dependencies(cli_test corral corral-executor corral-init)
endif()

add_test(NAME cli_completion_test
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli_completion_test.sh
          ${CMAKE_SOURCE_DIR}/cli/completion/corral.bash $<TARGET_FILE:corral>)
set_tests_properties(cli_completion_test PROPERTIES LABELS unit)
