# limits: hostile workloads against the real runtime (needs root): memory bomb, disk filler, fork
# bomb, each with a neighbour sandbox that must keep working (docs/promises.md P5, P12).
corral_add_test(NAME limits_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/limits_test.cpp
  LIBS corral_runtime corral_schemas LABELS integration)
if(TARGET corral-init)
  add_dependencies(limits_test corral-init)
endif()
