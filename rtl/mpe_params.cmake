# The RTL's parameters come from an MpeConfig JSON file, field for field (the parameter is the
# field's name in upper case), so the RTL and the C++ model are elaborated from the same file.
# Fields that only the host or the memory model use (name, description, clock_mhz,
# mem_latency_cycles, mem_bytes) are not RTL parameters.
set(QSL_MPE_RTL_FIELDS rows cols act_bits weight_bits acc_bits mem_beats_per_cycle
    weight_buffer_bytes act_buffer_bytes acc_buffer_bytes double_buffer queue_depth)

# qsl_mpe_params(<json file> <out var>): NAME=VALUE for every RTL parameter.
function(qsl_mpe_params json out)
  file(READ ${json} text)
  set(params)
  foreach(field ${QSL_MPE_RTL_FIELDS})
    string(JSON value ERROR_VARIABLE err GET "${text}" ${field})
    if(err)
      message(FATAL_ERROR "${json}: ${field}: ${err}")
    endif()
    if(value STREQUAL "ON")
      set(value 1)
    elseif(value STREQUAL "OFF")
      set(value 0)
    endif()
    string(TOUPPER ${field} name)
    list(APPEND params "${name}=${value}")
  endforeach()
  if(NOT CMAKE_SCRIPT_MODE_FILE)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${json})
  endif()
  set(${out} ${params} PARENT_SCOPE)
endfunction()
