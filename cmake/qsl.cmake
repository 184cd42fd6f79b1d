# Small build helpers shared by every subsystem's CMakeLists.txt.

# qsl_test(NAME SOURCES a_test.cc ... DEPS qsl_x ... [LABELS unit|integration|slow] [TIMEOUT s])
# One GoogleTest binary, its tests registered one by one with CTest.
function(qsl_test name)
  if(NOT QSL_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE QSL_SOURCE_DIR="${QSL_SOURCE_DIR}"
                                             QSL_BINARY_DIR="${CMAKE_BINARY_DIR}")
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
endfunction()

# qsl_kernel_flags(TARGET file.cc "-mavx2 -mfma ...") : ISA flags on one kernel file only, so
# the rest of the binary runs on any x86-64 and dispatch picks the path at run time.
function(qsl_kernel_flags file flags)
  separate_arguments(_f UNIX_COMMAND "${flags}")
  set_source_files_properties(${file} PROPERTIES COMPILE_OPTIONS "-O3;${_f}")
endfunction()
