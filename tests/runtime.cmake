# The gvisor runtime (executor/runtime/): unit tests of its pure parts, and integration tests
# against the real runsc, corral-init, overlayfs and cgroups (need root).
corral_add_test(NAME runtime_test SOURCES runtime_test.cpp
  LIBS corral_runtime corral_schemas LABELS integration)
if(TARGET corral-init)
  add_dependencies(runtime_test corral-init)
endif()
corral_add_test(NAME runtime_unit_test SOURCES runtime_unit_test.cpp
  LIBS corral_runtime corral_schemas LABELS unit)
