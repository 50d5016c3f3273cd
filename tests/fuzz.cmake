# tests/fuzz/: one fuzz target per wire root type and one for the init framing, each driving the
# code that consumes that input (tests/fuzz/README.md). With CORRAL_FUZZ they are libFuzzer
# programs; otherwise each is built with replay_main.cpp and ctest replays its seed corpus
# (tests/fuzz/corpus/<name>/) through the same entry point, in every build and in CI.
add_custom_target(corral_fuzz)
set(CORRAL_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)

# corral_add_fuzz(NAME name SOURCES ... LIBS ...): the program fuzz_<name> and, replaying
# corpus/<name>/, the test fuzz_replay_<name>.
function(corral_add_fuzz)
  cmake_parse_arguments(F "" "NAME" "SOURCES;LIBS" ${ARGN})
  set(target fuzz_${F_NAME})
  if(CORRAL_FUZZ)
    add_executable(${target} ${F_SOURCES})
    target_link_options(${target} PRIVATE -fsanitize=fuzzer)
    set(replay_args -runs=0)
  else()
    add_executable(${target} ${F_SOURCES} ${CORRAL_FUZZ_DIR}/replay_main.cpp)
    set(replay_args)
  endif()
  target_include_directories(${target} PRIVATE ${CMAKE_SOURCE_DIR})
  target_link_libraries(${target} PRIVATE ${F_LIBS})
  add_dependencies(corral_fuzz ${target})
  add_test(NAME fuzz_replay_${F_NAME}
           COMMAND ${target} ${replay_args} ${CORRAL_FUZZ_DIR}/corpus/${F_NAME})
  set_tests_properties(fuzz_replay_${F_NAME} PROPERTIES LABELS "unit;fuzz" TIMEOUT 300)
endfunction()

# corral-init's protocol engine over the scripted OS (fake_init_os.cpp stands in for
# sys_unsafe.cpp, spawn_unsafe.cpp and fs_unsafe.cpp).
add_library(corral_fuzz_init STATIC
  ${CMAKE_SOURCE_DIR}/executor/init/init_event_loop.cpp
  ${CMAKE_SOURCE_DIR}/executor/init/init_fs_call.cpp
  ${CMAKE_SOURCE_DIR}/executor/init/init_limits.cpp
  ${CORRAL_FUZZ_DIR}/fake_init_os.cpp
  ${CORRAL_FUZZ_DIR}/init_commands.cpp)
target_include_directories(corral_fuzz_init PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(corral_fuzz_init PUBLIC corral_schemas corral_storage)

corral_add_fuzz(NAME init_frames SOURCES ${CORRAL_FUZZ_DIR}/init_frames_fuzz.cpp LIBS corral_fuzz_init)
corral_add_fuzz(NAME init_command SOURCES ${CORRAL_FUZZ_DIR}/init_command_fuzz.cpp LIBS corral_fuzz_init)

# The executor's side: the actors' request decoding (actors/validate.hpp), the file operations,
# the job runner's decoding; with corral-init's loop where a request becomes an init command.
set(CORRAL_FUZZ_EXECUTOR_LIBS corral_actors corral_request_decode corral_client corral_fuzz_init)
foreach(name create_sandbox exec_request list_sandboxes set_tags replay_request sandbox_query
             stdin_write signal_request resize_request usage_request fs_request init_event)
  corral_add_fuzz(NAME ${name} SOURCES ${CORRAL_FUZZ_DIR}/${name}_fuzz.cpp
                  LIBS ${CORRAL_FUZZ_EXECUTOR_LIBS})
endforeach()
corral_add_fuzz(NAME job SOURCES ${CORRAL_FUZZ_DIR}/job_fuzz.cpp LIBS corral_jobs corral_sweep corral_fuzz_init)
corral_add_fuzz(NAME results_read SOURCES ${CORRAL_FUZZ_DIR}/results_read_fuzz.cpp
                LIBS corral_jobs corral_client corral_fuzz_init)

# The clients' side: the decoding of replies (client/replies.hpp) and of job results (client/sweep).
foreach(name ack error_reply exec_exit exec_reply fs_reply output_chunk sandbox_list sandbox_reply
             usage_reply heartbeat)
  corral_add_fuzz(NAME ${name} SOURCES ${CORRAL_FUZZ_DIR}/${name}_fuzz.cpp
                  LIBS corral_actors corral_client corral_fuzz_init)
endforeach()
corral_add_fuzz(NAME job_result SOURCES ${CORRAL_FUZZ_DIR}/job_result_fuzz.cpp LIBS corral_sweep corral_fuzz_init)

# The seed generator (not a test: its output is committed under corpus/).
add_executable(fuzz_seed_generator ${CORRAL_FUZZ_DIR}/seed_generator.cpp ${CORRAL_FUZZ_DIR}/seed_wire.cpp)
target_include_directories(fuzz_seed_generator PRIVATE ${CMAKE_SOURCE_DIR})
target_link_libraries(fuzz_seed_generator PRIVATE corral_actors corral_request_decode corral_jobs corral_sweep corral_client corral_fuzz_init)

# The guest runner's answers (from inside a sandbox) as the job runner frames them.
corral_add_fuzz(NAME guest_frames SOURCES ${CORRAL_FUZZ_DIR}/guest_frames_fuzz.cpp LIBS corral_jobs)
