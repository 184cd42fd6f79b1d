// The MPE: a command-stream controller around a weight-stationary int8 systolic array.
// Parameters are the fields of an MpeConfig JSON file (accel/mpe/*.json, rtl/configs/*.json),
// passed by rtl/mpe_params.cmake; the derived sizes below follow accel/mpe_config.cc and are
// reported in the identity registers, which the host checks against its own MpeConfig.
//
// Commands arrive on s_cmd (AXI-Stream, 128 bits) and are dispatched, one per cycle, in order,
// to three queues: load (LOAD_W, LOAD_A), execute (STREAM), store (DRAIN). Card memory is
// reached through a read-request/read-data pair (MEM_BEATS 64-byte beats per cycle) and a write
// port taking one accumulator row per cycle; both are sized so that no back-pressure is needed
// (space is reserved before a read is requested). docs/rtl.md has the block diagram.
module mpe_top #(
    parameter int ROWS = 16,
    parameter int COLS = 16,
    parameter int ACT_BITS = 8,
    parameter int WEIGHT_BITS = 8,
    parameter int ACC_BITS = 32,
    parameter int MEM_BEATS_PER_CYCLE = 4,
    parameter int WEIGHT_BUFFER_BYTES = 2048,
    parameter int ACT_BUFFER_BYTES = 4096,
    parameter int ACC_BUFFER_BYTES = 4096,
    parameter int DOUBLE_BUFFER = 1,
    parameter int QUEUE_DEPTH = 4
) (
    input  logic                                clk,
    input  logic                                rst_n,
    // AXI-Lite control
    input  logic                                s_axil_awvalid,
    output logic                                s_axil_awready,
    input  logic [7:0]                          s_axil_awaddr,
    input  logic                                s_axil_wvalid,
    output logic                                s_axil_wready,
    input  logic [31:0]                         s_axil_wdata,
    output logic                                s_axil_bvalid,
    input  logic                                s_axil_bready,
    output logic [1:0]                          s_axil_bresp,
    input  logic                                s_axil_arvalid,
    output logic                                s_axil_arready,
    input  logic [7:0]                          s_axil_araddr,
    output logic                                s_axil_rvalid,
    input  logic                                s_axil_rready,
    output logic [31:0]                         s_axil_rdata,
    output logic [1:0]                          s_axil_rresp,
    // commands
    input  logic                                s_cmd_tvalid,
    output logic                                s_cmd_tready,
    input  logic [127:0]                        s_cmd_tdata,
    // card memory: read requests and data
    output logic                                m_rd_req_tvalid,
    input  logic                                m_rd_req_tready,
    output logic [63:0]                         m_rd_req_addr,
    output logic [15:0]                         m_rd_req_beats,
    input  logic [MEM_BEATS_PER_CYCLE-1:0]      s_rd_tvalid,
    input  logic [MEM_BEATS_PER_CYCLE*512-1:0]  s_rd_tdata,
    // card memory: writes and their acknowledges
    output logic                                m_wr_tvalid,
    output logic [63:0]                         m_wr_addr,
    output logic [COLS*ACC_BITS-1:0]            m_wr_tdata,
    input  logic                                s_wr_ack,
    output logic                                irq  // high while idle (Vitis ap_ctrl_hs)
);
  // Derived sizes (accel/mpe_config.cc).
  localparam int P = MEM_BEATS_PER_CYCLE;
  localparam int W_SLOT_BYTES = (ROWS * COLS + 63) / 64 * 64;
  localparam int W_SLOTS = DOUBLE_BUFFER != 0 ? WEIGHT_BUFFER_BYTES / W_SLOT_BYTES : 1;
  localparam int A_SLOTS = DOUBLE_BUFFER != 0 ? 2 : 1;
  localparam int A_UNIT = ROWS > 64 ? ROWS : 64;
  localparam int A_SLOT_BYTES = ACT_BUFFER_BYTES / A_SLOTS / A_UNIT * A_UNIT;
  localparam int ACC_RING_ROWS = ACC_BUFFER_BYTES / (COLS * 4);
  localparam int SLOT_W = W_SLOTS > 2 ? $clog2(W_SLOTS) : 1;
  localparam int NS = 2 ** SLOT_W;  // weight slot entries (W_SLOTS of them used)
  localparam int ROW_W = ACC_RING_ROWS > 2 ? $clog2(ACC_RING_ROWS) : 1;
  localparam int TAG_W = ROW_W + 2;
  localparam int QW = $clog2(QUEUE_DEPTH + 1);
  localparam logic [QW-1:0] QD = QUEUE_DEPTH[QW-1:0];

  // ---- control registers and the run ----------------------------------------------------------
  logic start, running, finish, bad_cmd;
  logic [31:0] num_cmds, cmds_left, cmds_done, status;
  logic [63:0] cycles;

  mpe_regs #(
      .ROWS(ROWS), .COLS(COLS), .ACT_BITS(ACT_BITS), .WEIGHT_BITS(WEIGHT_BITS),
      .ACC_BITS(ACC_BITS), .W_SLOTS(W_SLOTS), .A_SLOT_BYTES(A_SLOT_BYTES),
      .ACC_RING_ROWS(ACC_RING_ROWS), .MEM_BEATS(P), .QUEUE_DEPTH(QUEUE_DEPTH),
      .DOUBLE_BUFFER(DOUBLE_BUFFER)
  ) regs (
      .clk, .rst_n, .s_axil_awvalid, .s_axil_awready, .s_axil_awaddr, .s_axil_wvalid,
      .s_axil_wready, .s_axil_wdata, .s_axil_bvalid, .s_axil_bready, .s_axil_bresp,
      .s_axil_arvalid, .s_axil_arready, .s_axil_araddr, .s_axil_rvalid, .s_axil_rready,
      .s_axil_rdata, .s_axil_rresp, .start, .num_cmds, .running, .finish, .status, .cycles,
      .cmds_done
  );

  // ---- dispatcher: one command per cycle into its queue, while the queue has room -------------
  logic [QW-1:0] lq_count, eq_count, sq_count;
  // Each queue keeps only the fields its unit reads.
  localparam int LQ_W = 1 + 1 + 4 + 16 + 64;
  localparam int EQ_W = 16 + 32 + 3;
  localparam int SQ_W = 16 + 64;
  logic [LQ_W-1:0] lq_head;
  logic [EQ_W-1:0] eq_head;
  logic [SQ_W-1:0] sq_head;
  wire [15:0] cmd_count = s_cmd_tdata[31:16];
  wire [63:0] cmd_addr = s_cmd_tdata[127:64];
  logic lq_pop, eq_pop, sq_pop;
  wire [3:0] op = s_cmd_tdata[3:0];
  wire to_load = op == mpe_pkg::OP_LOAD_W || op == mpe_pkg::OP_LOAD_A;
  wire to_exec = op == mpe_pkg::OP_STREAM;
  wire to_store = op == mpe_pkg::OP_DRAIN;
  wire room = to_load ? lq_count < QD : to_exec ? eq_count < QD : sq_count < QD;
  wire accepting = running && cmds_left != 0;
  wire well_formed = (to_load || to_exec || to_store) && s_cmd_tdata[7:4] == 4'd0 && !s_cmd_tdata[11];
  assign bad_cmd = accepting && s_cmd_tvalid && !well_formed;
  assign s_cmd_tready = accepting && room && well_formed;
  wire cmd_fire = s_cmd_tvalid && s_cmd_tready;

  mpe_fifo #(.WIDTH(LQ_W), .DEPTH(QUEUE_DEPTH)) load_q (
      .clk, .rst_n, .push(cmd_fire && to_load),
      .din({op == mpe_pkg::OP_LOAD_W, s_cmd_tdata[8], s_cmd_tdata[15:12], cmd_count, cmd_addr}),
      .pop(lq_pop), .dout(lq_head), .count(lq_count));
  mpe_fifo #(.WIDTH(EQ_W), .DEPTH(QUEUE_DEPTH)) exec_q (
      .clk, .rst_n, .push(cmd_fire && to_exec),
      .din({cmd_count, s_cmd_tdata[63:32], s_cmd_tdata[10:8]}), .pop(eq_pop), .dout(eq_head),
      .count(eq_count));
  mpe_fifo #(.WIDTH(SQ_W), .DEPTH(QUEUE_DEPTH)) store_q (
      .clk, .rst_n, .push(cmd_fire && to_store), .din({cmd_count, cmd_addr}), .pop(sq_pop),
      .dout(sq_head), .count(sq_count));

  // ---- load unit and the two input rings ------------------------------------------------------
  logic [P-1:0] lane_w, lane_a;
  logic [P*SLOT_W-1:0] lane_slot;
  logic [P*16-1:0] lane_off;
  logic w_free, a_free, load_busy, latch_start;
  logic [NS-1:0] w_ready, w_is_w4;
  logic [1:0] a_ready;
  logic [NS*4-1:0] w_gshift;

  mpe_load #(.MEM_BEATS(P), .W_SLOTS(W_SLOTS), .A_SLOTS(A_SLOTS), .SLOT_W(SLOT_W)) load (
      .clk, .rst_n, .q_valid(lq_count != 0), .q_is_w(lq_head[85]), .q_is_w4(lq_head[84]),
      .q_gshift(lq_head[83:80]), .q_beats(lq_head[79:64]), .q_addr(lq_head[63:0]), .q_pop(lq_pop),
      .m_rd_req_valid(m_rd_req_tvalid), .m_rd_req_ready(m_rd_req_tready), .m_rd_req_addr,
      .m_rd_req_beats, .rd_valid(s_rd_tvalid), .lane_w, .lane_a, .lane_slot, .lane_off,
      .w_take(latch_start), .w_free,
      .a_free, .w_ready, .a_ready, .w_is_w4, .w_gshift, .busy(load_busy));

  logic [ROWS*SLOT_W-1:0] lat_slot;
  logic [ROWS*COLS*WEIGHT_BITS-1:0] w_rows;

  mpe_wbuf #(
      .ROWS(ROWS), .COLS(COLS), .WEIGHT_BITS(WEIGHT_BITS), .MEM_BEATS(P), .W_SLOTS(W_SLOTS),
      .SLOT_BYTES(W_SLOT_BYTES), .SLOT_W(SLOT_W)
  ) wbuf (
      .clk, .lane_w, .lane_slot, .lane_off, .lane_data(s_rd_tdata), .w_is_w4, .w_gshift,
      .rd_slot(lat_slot), .rd_row(w_rows));

  logic act_slot;
  logic [31:0] act_row;
  logic [ROWS*ACT_BITS-1:0] act_data;

  mpe_abuf #(
      .ROWS(ROWS), .ACT_BITS(ACT_BITS), .MEM_BEATS(P), .A_SLOTS(A_SLOTS),
      .SLOT_BYTES(A_SLOT_BYTES), .SLOT_W(SLOT_W)
  ) abuf (
      .clk, .lane_a, .lane_slot, .lane_off, .lane_data(s_rd_tdata), .rd_slot(act_slot),
      .rd_row(act_row), .rd_data(act_data));

  // ---- execute unit, array, accumulators ------------------------------------------------------
  logic row_valid, acc_first, tile_last, exec_busy, array_busy;
  logic [ROW_W-1:0] acc_row;
  logic [SLOT_W-1:0] latch_slot;
  logic acc_free_valid;
  logic [ROW_W:0] acc_free_rows;

  mpe_exec #(
      .W_SLOTS(W_SLOTS), .A_SLOTS(A_SLOTS), .ACC_RING_ROWS(ACC_RING_ROWS),
      .DOUBLE_BUFFER(DOUBLE_BUFFER), .SLOT_W(SLOT_W), .ROW_W(ROW_W)
  ) exec (
      .clk, .rst_n, .q_valid(eq_count != 0), .q_rows(eq_head[50:35]), .q_act_row(eq_head[34:3]),
      .q_first(eq_head[0]), .q_last(eq_head[1]), .q_pop_act(eq_head[2]), .q_pop(eq_pop), .w_ready,
      .a_ready, .acc_free_valid, .acc_free_rows, .row_valid, .act_slot, .act_row, .acc_row,
      .acc_first, .tile_last, .latch_start, .latch_slot, .a_free, .busy(exec_busy));

  logic out_valid;
  logic [TAG_W-1:0] out_tag;
  logic [COLS*ACC_BITS-1:0] out_psum;

  mpe_array #(
      .ROWS(ROWS), .COLS(COLS), .ACT_BITS(ACT_BITS), .WEIGHT_BITS(WEIGHT_BITS),
      .ACC_BITS(ACC_BITS), .SLOT_W(SLOT_W), .TAG_W(TAG_W)
  ) array (
      .clk, .rst_n, .in_valid(row_valid), .in_act(act_data),
      .in_tag({acc_row, acc_first, tile_last}), .latch_start, .latch_slot, .lat_slot,
      .w_rows, .latch_done(w_free), .out_valid, .out_tag, .out_psum, .busy(array_busy));

  logic [ROW_W-1:0] drain_row;
  logic [COLS*ACC_BITS-1:0] drain_data;

  mpe_accum #(.COLS(COLS), .ACC_BITS(ACC_BITS), .ACC_RING_ROWS(ACC_RING_ROWS), .ROW_W(ROW_W)) accum (
      .clk, .in_valid(out_valid), .in_row(out_tag[TAG_W-1:2]), .in_first(out_tag[1]),
      .in_psum(out_psum), .rd_row(drain_row), .rd_data(drain_data));

  // ---- store unit -----------------------------------------------------------------------------
  logic store_busy;
  mpe_store #(.COLS(COLS), .ACC_BITS(ACC_BITS), .ACC_RING_ROWS(ACC_RING_ROWS), .ROW_W(ROW_W)) store (
      .clk, .rst_n, .q_valid(sq_count != 0), .q_rows(sq_head[79:64]), .q_addr(sq_head[63:0]),
      .q_pop(sq_pop),
      .tile_done(out_valid && out_tag[0]), .rd_row(drain_row), .rd_data(drain_data),
      .m_wr_valid(m_wr_tvalid), .m_wr_addr, .m_wr_data(m_wr_tdata), .wr_ack(s_wr_ack),
      .acc_free_valid, .acc_free_rows, .busy(store_busy));

  // ---- run control: the cycle counter runs from start until everything is quiet ---------------
  wire quiet = cmds_left == 0 && lq_count == 0 && eq_count == 0 && sq_count == 0 && !load_busy &&
               !exec_busy && !array_busy && !store_busy;
  assign finish = running && (quiet || bad_cmd);
  assign irq = !running;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      running <= 1'b0;
      cycles <= '0;
      cmds_left <= '0;
      cmds_done <= '0;
      status <= '0;
    end else if (start) begin
      running <= 1'b1;
      cycles <= '0;
      cmds_left <= num_cmds;
      cmds_done <= '0;
      status <= mpe_pkg::STATUS_OK;
    end else if (running) begin
      cycles <= cycles + 64'd1;
      if (cmd_fire) begin
        cmds_left <= cmds_left - 32'd1;
        cmds_done <= cmds_done + 32'd1;
      end
      if (bad_cmd) status <= mpe_pkg::STATUS_BAD_COMMAND;
      if (finish) running <= 1'b0;
    end
  end
endmodule
