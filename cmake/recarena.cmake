# Helpers shared by every directory's CMakeLists.txt.

# ra_add_criterion_test(NAME name SOURCES a.c b.c LIBS lib1 lib2 [LABELS l1 l2] [TIMEOUT s])
# Builds one Criterion suite and registers it with ctest. Label "cuda" marks suites that need a GPU.
function(ra_add_criterion_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} PkgConfig::CRITERION)
  target_compile_definitions(${T_NAME} PRIVATE RA_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                             RA_BINARY_DIR="${CMAKE_BINARY_DIR}")
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} --jobs 1)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT})
  if(T_LABELS)
    set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
