# The decoding of clients' requests into the actors' verbs (no NATS: the tests link it too).
add_library(corral_request_decode STATIC request_decode.cpp)
target_include_directories(corral_request_decode PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(corral_request_decode PUBLIC corral_actors)
add_library(corral_executor_lib STATIC nats_bridge.cpp tenants_file.cpp)
target_include_directories(corral_executor_lib PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(corral_executor_lib PUBLIC corral_actors corral_request_decode corral_bus corral_runtime)

add_executable(corral-executor main.cpp)
target_link_libraries(corral-executor PRIVATE corral_executor_lib corral_jobs)
if(TARGET corral-init)
  add_dependencies(corral-executor corral-init)
endif()
