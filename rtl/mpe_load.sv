// The load unit: issues the load queue's LOAD_W / LOAD_A as read requests, in order, one per
// cycle, each once its ring has a free slot (space is reserved before the request, so read data
// is never back-pressured), and routes returning beats (up to MEM_BEATS per cycle, possibly of
// several requests) to their slots. A slot is ready the cycle after its last beat.
module mpe_load #(
    parameter int MEM_BEATS = 1,
    parameter int W_SLOTS = 4,
    parameter int A_SLOTS = 2,
    parameter int SLOT_W = 2  // bits of a weight slot index (activation slots use bit 0)
) (
    input  logic                          clk,
    input  logic                          rst_n,
    // head of the load queue
    input  logic                          q_valid,
    input  logic                          q_is_w,   // LOAD_W (else LOAD_A)
    input  logic                          q_is_w4,
    input  logic [3:0]                    q_gshift,
    input  logic [15:0]                   q_beats,
    input  logic [63:0]                   q_addr,
    output logic                          q_pop,
    // read requests
    output logic                          m_rd_req_valid,
    input  logic                          m_rd_req_ready,
    output logic [63:0]                   m_rd_req_addr,
    output logic [15:0]                   m_rd_req_beats,
    // read data: lanes 0..n-1 valid, in request order
    input  logic [MEM_BEATS-1:0]          rd_valid,
    // where each lane's beat goes
    output logic [MEM_BEATS-1:0]          lane_w,
    output logic [MEM_BEATS-1:0]          lane_a,
    output logic [MEM_BEATS*SLOT_W-1:0]   lane_slot,  // lane l: [l*SLOT_W +: SLOT_W]
    output logic [MEM_BEATS*16-1:0]       lane_off,   // beat offset in the slot
    // ring state
    input  logic                          w_take,  // a STREAM took the oldest loaded tile
    input  logic                          w_free,  // a slot is free again (its rows latched)
    input  logic                          a_free,  // the oldest activation slot is free again
    // per slot (2**SLOT_W weight entries, two activation entries; unused ones stay 0)
    output logic [2**SLOT_W-1:0]          w_ready,
    output logic [1:0]                    a_ready,
    output logic [2**SLOT_W-1:0]          w_is_w4,
    output logic [2**SLOT_W*4-1:0]        w_gshift,
    output logic                          busy
);
  localparam int DD = W_SLOTS + A_SLOTS;  // the most requests that can be outstanding (>= 2)
  localparam int IW = $clog2(DD);
  localparam int DW = $clog2(DD + 1);
  localparam int WCW = $clog2(W_SLOTS + 1);
  localparam int ACW = $clog2(A_SLOTS + 1);
  localparam logic [WCW-1:0] W_SLOTS_C = W_SLOTS[WCW-1:0];
  localparam logic [ACW-1:0] A_SLOTS_C = A_SLOTS[ACW-1:0];
  localparam logic [WCW-1:0] WONE = 1;
  localparam logic [ACW-1:0] AONE = 1;
  localparam logic [DW-1:0] DONE_ = 1;
  localparam int W_LAST_INDEX = W_SLOTS - 1;
  localparam logic [SLOT_W-1:0] W_LAST = W_LAST_INDEX[SLOT_W-1:0];
  localparam logic [SLOT_W-1:0] SONE = 1;

  logic [IW-1:0] dhead, dtail;
  logic [DW-1:0] dcount, pops;
  logic desc_w[2**IW];
  logic [SLOT_W-1:0] desc_slot[2**IW];
  logic [15:0] desc_beats[2**IW];
  logic [15:0] rd_off, next_off;
  logic [SLOT_W-1:0] w_tail, w_taken;
  logic a_tail, a_old;
  logic [WCW-1:0] w_count;
  logic [ACW-1:0] a_count;
  logic [MEM_BEATS-1:0] lane_last;

  wire space = q_is_w ? w_count < W_SLOTS_C : a_count < A_SLOTS_C;
  assign m_rd_req_valid = q_valid && space;
  assign m_rd_req_addr = q_addr;
  assign m_rd_req_beats = q_beats;
  wire fire = m_rd_req_valid && m_rd_req_ready;
  assign q_pop = fire;
  assign busy = dcount != 0;

  // Descriptor index `base + n`, wrapped around the DD entries.
  function automatic logic [IW-1:0] wrap(input logic [IW-1:0] base, input logic [DW-1:0] n);
    /* verilator lint_off UNUSEDSIGNAL */  // only the low bits of the sum are an index
    logic [31:0] i;
    /* verilator lint_on UNUSEDSIGNAL */
    i = {{(32 - IW) {1'b0}}, base} + {{(32 - DW) {1'b0}}, n};
    if (i >= DD) i = i - DD;
    wrap = i[IW-1:0];
  endfunction

  // Walk the lanes through the outstanding requests: lane l carries beat `lane_off` of the
  // request it falls in; a lane that ends a request moves the walk to the next one.
  // (always @* rather than always_comb: Icarus 11 does not support constant part-selects in
  // always_comb sensitivity.)
  always @* begin : walk
    logic [DW-1:0] idx;
    logic [15:0] off;
    logic [IW-1:0] d;
    idx = '0;
    off = rd_off;
    for (int l = 0; l < MEM_BEATS; l++) begin
      d = wrap(dhead, idx);
      lane_w[l] = rd_valid[l] && desc_w[d];
      lane_a[l] = rd_valid[l] && !desc_w[d];
      lane_slot[l*SLOT_W+:SLOT_W] = desc_slot[d];
      lane_off[l*16+:16] = off;
      lane_last[l] = rd_valid[l] && off == desc_beats[d] - 16'd1;
      if (rd_valid[l]) begin
        if (off == desc_beats[d] - 16'd1) begin
          idx = idx + DONE_;
          off = '0;
        end else begin
          off = off + 16'd1;
        end
      end
    end
    pops = idx;
    next_off = off;
  end

  always_ff @(posedge clk) begin
    if (fire) begin
      desc_w[dtail] <= q_is_w;
      desc_slot[dtail] <= q_is_w ? w_tail : (a_tail ? SONE : '0);
      desc_beats[dtail] <= q_beats;
      if (q_is_w) begin
        w_is_w4[w_tail] <= q_is_w4;
        w_gshift[w_tail*4+:4] <= q_gshift;
      end
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      dhead <= '0;
      dtail <= '0;
      dcount <= '0;
      rd_off <= '0;
      w_tail <= '0;
      w_taken <= '0;
      a_tail <= 1'b0;
      a_old <= 1'b0;
      w_count <= '0;
      a_count <= '0;
      w_ready <= '0;
      a_ready <= '0;
    end else begin
      if (fire) begin
        dtail <= wrap(dtail, DONE_);
        if (q_is_w) w_tail <= w_tail == W_LAST ? '0 : w_tail + SONE;
        else a_tail <= A_SLOTS > 1 ? !a_tail : 1'b0;
      end
      dhead <= wrap(dhead, pops);
      dcount <= dcount + (fire ? DONE_ : '0) - pops;
      rd_off <= next_off;
      for (int l = 0; l < MEM_BEATS; l++) begin
        if (lane_last[l] && lane_w[l]) w_ready[lane_slot[l*SLOT_W+:SLOT_W]] <= 1'b1;
        if (lane_last[l] && lane_a[l]) a_ready[lane_slot[l*SLOT_W]] <= 1'b1;
      end
      // A tile is no longer ready once a STREAM takes it (its slot keeps feeding the array's
      // rows until w_free, and is refilled only after that).
      if (w_take) begin
        w_ready[w_taken] <= 1'b0;
        w_taken <= w_taken == W_LAST ? '0 : w_taken + SONE;
      end
      if (a_free) begin
        a_ready[a_old] <= 1'b0;
        a_old <= A_SLOTS > 1 ? !a_old : 1'b0;
      end
      w_count <= w_count + ((fire && q_is_w) ? WONE : '0) - (w_free ? WONE : '0);
      a_count <= a_count + ((fire && !q_is_w) ? AONE : '0) - (a_free ? AONE : '0);
    end
  end
endmodule
