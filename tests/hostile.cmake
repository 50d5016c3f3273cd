# tests/hostile/: the attacks of docs/security.md, each a test that fails when its boundary is
# broken: a tenant with a raw NATS client, root code inside a sandbox, a job that tries to outlive
# or forge its own result, a client that holds every slot. Each area keeps its targets in its own
# tests/hostile/<area>.cmake.
file(GLOB CORRAL_HOSTILE_AREAS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/hostile/*.cmake)
foreach(area ${CORRAL_HOSTILE_AREAS})
  include(${area})
endforeach()
