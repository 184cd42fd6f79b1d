# Packages the MPE RTL kernel as a Vitis .xo (Vivado batch mode; needs Vivado, not run here):
#   vivado -mode batch -source rtl/vitis/package_kernel.tcl \
#          -tclargs <out.xo> <build>/rtl/vitis/kernel.xml <build>/rtl/vitis/mpe_params.tcl
# mpe_params.tcl (generated from the same MpeConfig JSON as kernel.xml) sets `params`, the RTL
# parameters as a name/value list.
set xo [lindex $argv 0]
set kernel_xml [lindex $argv 1]
source [lindex $argv 2]
set rtl [file normalize [file dirname [info script]]/..]

create_project -in_memory -part xcu280-fsvh2892-2L-e
read_verilog -sv [concat [glob $rtl/mpe_*.sv] [list $rtl/vitis/mpe_kernel.sv]]
set_property top mpe_kernel [current_fileset]
foreach {name value} $params {
  set_property generic "$name=$value" [current_fileset]
}
ipx::package_project -root_dir ./mpe_ip -vendor qsl -library kernel -taxonomy /KernelIP \
    -import_files -set_current true
set core [ipx::current_core]
foreach {name value} $params {
  set_property value $value [ipx::get_user_parameters $name -of_objects $core]
}
foreach bus {s_axi_control s_axis_cmd m_axis_rdreq s_axis_rddata m_axis_wr s_axis_wrack} {
  ipx::associate_bus_interfaces -busif $bus -clock ap_clk $core
}
set_property sdx_kernel true $core
set_property sdx_kernel_type rtl $core
set_property ipi_drc {ignore_freq_hz true} $core
ipx::create_xgui_files $core
ipx::update_checksums $core
ipx::save_core $core
package_xo -xo_path $xo -kernel_name mpe -ip_directory ./mpe_ip -kernel_xml $kernel_xml -force
