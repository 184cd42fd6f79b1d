// AXI-Lite control registers (offsets in mpe_pkg.sv and accel/command_stream.h, ap_ctrl_hs
// layout): start, the command count, status, the cycle counter of the last run and read-only
// identity registers that let the host check the bitstream against its MpeConfig.
module mpe_regs #(
    parameter int ROWS = 16,
    parameter int COLS = 16,
    parameter int ACT_BITS = 8,
    parameter int WEIGHT_BITS = 8,
    parameter int ACC_BITS = 32,
    parameter int W_SLOTS = 4,
    parameter int A_SLOT_BYTES = 1024,
    parameter int ACC_RING_ROWS = 64,
    parameter int MEM_BEATS = 1,
    parameter int QUEUE_DEPTH = 4,
    parameter int DOUBLE_BUFFER = 1
) (
    input  logic        clk,
    input  logic        rst_n,
    // AXI-Lite slave
    input  logic        s_axil_awvalid,
    output logic        s_axil_awready,
    input  logic [7:0]  s_axil_awaddr,
    input  logic        s_axil_wvalid,
    output logic        s_axil_wready,
    input  logic [31:0] s_axil_wdata,
    output logic        s_axil_bvalid,
    input  logic        s_axil_bready,
    output logic [1:0]  s_axil_bresp,
    input  logic        s_axil_arvalid,
    output logic        s_axil_arready,
    input  logic [7:0]  s_axil_araddr,
    output logic        s_axil_rvalid,
    input  logic        s_axil_rready,
    output logic [31:0] s_axil_rdata,
    output logic [1:0]  s_axil_rresp,
    // to and from the controller
    output logic        start,
    output logic [31:0] num_cmds,
    input  logic        running,
    input  logic        finish,      // pulse: the run ended (sets done)
    input  logic [31:0] status,
    input  logic [63:0] cycles,
    input  logic [31:0] cmds_done
);
  localparam logic [31:0] OPERAND_BITS = ACT_BITS | (WEIGHT_BITS << 8) | (ACC_BITS << 16);
  logic done;
  logic [31:0] read_value;

  wire write_fire = s_axil_awvalid && s_axil_wvalid && !s_axil_bvalid;
  wire read_fire = s_axil_arvalid && !s_axil_rvalid;
  assign s_axil_awready = write_fire;
  assign s_axil_wready = write_fire;
  assign s_axil_bresp = 2'b00;
  assign s_axil_arready = !s_axil_rvalid;
  assign s_axil_rresp = 2'b00;
  assign start = write_fire && s_axil_awaddr == mpe_pkg::REG_CTRL && s_axil_wdata[0] && !running;

  // (always @* rather than always_comb: Icarus 11 does not support constant part-selects in
  // always_comb sensitivity.)
  always @* begin
    case (s_axil_araddr)
      mpe_pkg::REG_CTRL: read_value = {29'b0, !running, done, running};
      mpe_pkg::REG_NUM_CMDS: read_value = num_cmds;
      mpe_pkg::REG_STATUS: read_value = status;
      mpe_pkg::REG_CYCLES_LO: read_value = cycles[31:0];
      mpe_pkg::REG_CYCLES_HI: read_value = cycles[63:32];
      mpe_pkg::REG_CMDS_DONE: read_value = cmds_done;
      mpe_pkg::REG_MAGIC: read_value = mpe_pkg::MPE_MAGIC;
      mpe_pkg::REG_ROWS: read_value = ROWS;
      mpe_pkg::REG_COLS: read_value = COLS;
      mpe_pkg::REG_W_SLOTS: read_value = W_SLOTS;
      mpe_pkg::REG_A_SLOT_BYTES: read_value = A_SLOT_BYTES;
      mpe_pkg::REG_ACC_RING_ROWS: read_value = ACC_RING_ROWS;
      mpe_pkg::REG_MEM_BEATS: read_value = MEM_BEATS;
      mpe_pkg::REG_QUEUE_DEPTH: read_value = QUEUE_DEPTH;
      mpe_pkg::REG_OPERAND_BITS: read_value = OPERAND_BITS;
      mpe_pkg::REG_DOUBLE_BUFFER: read_value = DOUBLE_BUFFER;
      default: read_value = 32'h0;
    endcase
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      s_axil_bvalid <= 1'b0;
      s_axil_rvalid <= 1'b0;
      s_axil_rdata <= '0;
      num_cmds <= '0;
      done <= 1'b0;
    end else begin
      if (write_fire) begin
        s_axil_bvalid <= 1'b1;
        if (s_axil_awaddr == mpe_pkg::REG_NUM_CMDS) num_cmds <= s_axil_wdata;
      end else if (s_axil_bvalid && s_axil_bready) begin
        s_axil_bvalid <= 1'b0;
      end
      if (read_fire) begin
        s_axil_rvalid <= 1'b1;
        s_axil_rdata <= read_value;
      end else if (s_axil_rvalid && s_axil_rready) begin
        s_axil_rvalid <= 1'b0;
      end
      // done is set when a run ends and cleared when read (ap_done is clear-on-read) or on start.
      if (finish) done <= 1'b1;
      else if (start || (read_fire && s_axil_araddr == mpe_pkg::REG_CTRL)) done <= 1'b0;
    end
  end
endmodule
