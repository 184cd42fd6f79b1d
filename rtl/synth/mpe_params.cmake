# cmake -DJSON=<config.json> -P rtl/synth/mpe_params.cmake: prints the RTL parameters of an
# MpeConfig file as NAME=VALUE lines, through the same mapping the build uses.
include(${CMAKE_CURRENT_LIST_DIR}/../mpe_params.cmake)
qsl_mpe_params(${JSON} params)
foreach(p ${params})
  message("${p}")
endforeach()
