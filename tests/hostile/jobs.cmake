# Hostile jobs (docs/security.md, "A job vs. the next job, and a program vs. its own verdict"):
# survivors of a fresh job against the next job of the same lease, and programs that try to
# forge their own completion, against a real nats-server, corral-executor and runsc.
if(TARGET corral-executor)
  find_package(nlohmann_json 3 REQUIRED)
  foreach(t jobs_isolation_test jobs_verdict_test)
    corral_add_test(NAME hostile_${t}
      SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/hostile/${t}.cpp
      LIBS corral_bus corral_schemas corral_test_support nlohmann_json::nlohmann_json
      LABELS integration hostile)
    add_dependencies(hostile_${t} corral corral-executor corral-init)
    # Jobs are written with designated initializers that leave the rest at its default.
    target_compile_options(hostile_${t} PRIVATE -Wno-missing-field-initializers)
  endforeach()
endif()
