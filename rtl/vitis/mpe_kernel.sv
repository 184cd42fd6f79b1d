// The MPE as a Vitis RTL kernel: Vitis port names (ap_clk, ap_rst_n, s_axi_control,
// AXI4-Stream interfaces, interrupt) around mpe_top. Card memory is reached through the
// mpe_dma datamover kernel (mpe_dma.cpp) over four streams: read requests {beats, address} out,
// read data (MEM_BEATS_PER_CYCLE 512-bit lanes, lane mask in TUSER) in, row writes
// {address, row} out, write acknowledges in. Commands arrive on s_axis_cmd (also from mpe_dma).
module mpe_kernel #(
    parameter int ROWS = 128,
    parameter int COLS = 64,
    parameter int ACT_BITS = 8,
    parameter int WEIGHT_BITS = 8,
    parameter int ACC_BITS = 32,
    parameter int MEM_BEATS_PER_CYCLE = 24,
    parameter int WEIGHT_BUFFER_BYTES = 1048576,
    parameter int ACT_BUFFER_BYTES = 2097152,
    parameter int ACC_BUFFER_BYTES = 262144,
    parameter int DOUBLE_BUFFER = 1,
    parameter int QUEUE_DEPTH = 4
) (
    input  logic                                ap_clk,
    input  logic                                ap_rst_n,
    input  logic                                s_axi_control_awvalid,
    output logic                                s_axi_control_awready,
    input  logic [7:0]                          s_axi_control_awaddr,
    input  logic                                s_axi_control_wvalid,
    output logic                                s_axi_control_wready,
    input  logic [31:0]                         s_axi_control_wdata,
    input  logic [3:0]                          s_axi_control_wstrb,
    output logic                                s_axi_control_bvalid,
    input  logic                                s_axi_control_bready,
    output logic [1:0]                          s_axi_control_bresp,
    input  logic                                s_axi_control_arvalid,
    output logic                                s_axi_control_arready,
    input  logic [7:0]                          s_axi_control_araddr,
    output logic                                s_axi_control_rvalid,
    input  logic                                s_axi_control_rready,
    output logic [31:0]                         s_axi_control_rdata,
    output logic [1:0]                          s_axi_control_rresp,
    input  logic                                s_axis_cmd_tvalid,
    output logic                                s_axis_cmd_tready,
    input  logic [127:0]                        s_axis_cmd_tdata,
    output logic                                m_axis_rdreq_tvalid,
    input  logic                                m_axis_rdreq_tready,
    output logic [127:0]                        m_axis_rdreq_tdata,  // {48'b0, beats, address}
    input  logic                                s_axis_rddata_tvalid,
    output logic                                s_axis_rddata_tready,
    input  logic [MEM_BEATS_PER_CYCLE*512-1:0]  s_axis_rddata_tdata,
    input  logic [MEM_BEATS_PER_CYCLE-1:0]      s_axis_rddata_tuser,  // lanes 0..n-1 valid
    output logic                                m_axis_wr_tvalid,
    input  logic                                m_axis_wr_tready,
    output logic [COLS*ACC_BITS+63:0]           m_axis_wr_tdata,     // {address, row}
    input  logic                                s_axis_wrack_tvalid,
    output logic                                s_axis_wrack_tready,
    input  logic [7:0]                          s_axis_wrack_tdata,
    /* verilator lint_off SYMRSVDWORD */  // Vitis requires this exact name
    output logic                                interrupt
    /* verilator lint_on SYMRSVDWORD */
);
  logic [63:0] rd_addr, wr_addr;
  logic [15:0] rd_beats;
  logic [COLS*ACC_BITS-1:0] wr_row;
  logic idle;

  // The MPE reserves buffer space before it requests data and sizes its write port to one row
  // per cycle (accel/mpe_config.cc), so these streams are never back-pressured by it; the
  // datamover must keep up (it has no FIFO slack to absorb a stall of the write stream).
  assign s_axis_rddata_tready = 1'b1;
  assign s_axis_wrack_tready = 1'b1;
  assign m_axis_rdreq_tdata = {48'b0, rd_beats, rd_addr};
  assign m_axis_wr_tdata = {wr_addr, wr_row};
  assign interrupt = idle;

  mpe_top #(
      .ROWS(ROWS), .COLS(COLS), .ACT_BITS(ACT_BITS), .WEIGHT_BITS(WEIGHT_BITS),
      .ACC_BITS(ACC_BITS), .MEM_BEATS_PER_CYCLE(MEM_BEATS_PER_CYCLE),
      .WEIGHT_BUFFER_BYTES(WEIGHT_BUFFER_BYTES), .ACT_BUFFER_BYTES(ACT_BUFFER_BYTES),
      .ACC_BUFFER_BYTES(ACC_BUFFER_BYTES), .DOUBLE_BUFFER(DOUBLE_BUFFER), .QUEUE_DEPTH(QUEUE_DEPTH)
  ) mpe (
      .clk(ap_clk), .rst_n(ap_rst_n),
      .s_axil_awvalid(s_axi_control_awvalid), .s_axil_awready(s_axi_control_awready),
      .s_axil_awaddr(s_axi_control_awaddr), .s_axil_wvalid(s_axi_control_wvalid),
      .s_axil_wready(s_axi_control_wready), .s_axil_wdata(s_axi_control_wdata),
      .s_axil_bvalid(s_axi_control_bvalid), .s_axil_bready(s_axi_control_bready),
      .s_axil_bresp(s_axi_control_bresp), .s_axil_arvalid(s_axi_control_arvalid),
      .s_axil_arready(s_axi_control_arready), .s_axil_araddr(s_axi_control_araddr),
      .s_axil_rvalid(s_axi_control_rvalid), .s_axil_rready(s_axi_control_rready),
      .s_axil_rdata(s_axi_control_rdata), .s_axil_rresp(s_axi_control_rresp),
      .s_cmd_tvalid(s_axis_cmd_tvalid), .s_cmd_tready(s_axis_cmd_tready),
      .s_cmd_tdata(s_axis_cmd_tdata), .m_rd_req_tvalid(m_axis_rdreq_tvalid),
      .m_rd_req_tready(m_axis_rdreq_tready), .m_rd_req_addr(rd_addr), .m_rd_req_beats(rd_beats),
      .s_rd_tvalid(s_axis_rddata_tvalid ? s_axis_rddata_tuser : '0),
      .s_rd_tdata(s_axis_rddata_tdata), .m_wr_tvalid(m_axis_wr_tvalid), .m_wr_addr(wr_addr),
      .m_wr_tdata(wr_row), .s_wr_ack(s_axis_wrack_tvalid), .irq(idle));

  // Write strobes are all-ones in practice; the ready of the write stream and the acknowledge
  // payload are not used (see above).
  /* verilator lint_off UNUSEDSIGNAL */
  wire unused = &{1'b0, s_axi_control_wstrb, m_axis_wr_tready, s_axis_wrack_tdata};
  /* verilator lint_on UNUSEDSIGNAL */
endmodule
