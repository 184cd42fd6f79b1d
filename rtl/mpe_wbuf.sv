// The weight ring: W_SLOTS slots, each holding one tile record exactly as stored in card memory
// (k4-interleaved, W4 group metadata at the end; format/weight_tiles.h). Beats are written as
// they arrive; row r of a slot is read when the array latches it, through the W4 dequant unit:
// W8 = (q4 - z) * s, integer only, exactly the contract's ExpandW4.
module mpe_wbuf #(
    parameter int ROWS = 16,
    parameter int COLS = 16,
    parameter int WEIGHT_BITS = 8,
    parameter int MEM_BEATS = 1,
    parameter int W_SLOTS = 4,
    parameter int SLOT_BYTES = 256,
    parameter int SLOT_W = 2
) (
    input  logic                              clk,
    // beats from the load unit
    input  logic [MEM_BEATS-1:0]              lane_w,
    input  logic [MEM_BEATS*SLOT_W-1:0]       lane_slot,
    input  logic [MEM_BEATS*16-1:0]           lane_off,
    input  logic [MEM_BEATS*512-1:0]          lane_data,
    // per-slot scheme, from the LOAD_W that filled it
    input  logic [2**SLOT_W-1:0]              w_is_w4,
    input  logic [2**SLOT_W*4-1:0]            w_gshift,
    // row reads for the array
    input  logic [ROWS*SLOT_W-1:0]            rd_slot,  // row r: [r*SLOT_W +: SLOT_W]
    output logic [ROWS*COLS*WEIGHT_BITS-1:0]  rd_row    // row r, column c: [(r*COLS+c)*8 +: 8]
);
  localparam int QBYTES = ROWS * COLS / 2;  // packed nibbles of a W4 tile
  localparam int SLOT_BEATS = SLOT_BYTES / 64;
  localparam int BW = W_SLOTS * SLOT_BEATS > 1 ? $clog2(W_SLOTS * SLOT_BEATS) : 1;

  // Organised in 64-byte beats, as it is written.
  logic [511:0] mem[2**BW];

  function automatic logic [BW-1:0] beat_index(input logic [SLOT_W-1:0] slot, input logic [31:0] beat);
    /* verilator lint_off UNUSEDSIGNAL */  // only the low bits of the sum are an index
    logic [31:0] i;
    /* verilator lint_on UNUSEDSIGNAL */
    i = {{(32 - SLOT_W) {1'b0}}, slot} * SLOT_BEATS + beat;
    beat_index = i[BW-1:0];
  endfunction

  always_ff @(posedge clk) begin
    for (int l = 0; l < MEM_BEATS; l++) begin
      if (lane_w[l]) begin
        mem[beat_index(lane_slot[l*SLOT_W+:SLOT_W], {16'b0, lane_off[l*16+:16]})] <=
            lane_data[l*512+:512];
      end
    end
  end

  function automatic logic [7:0] byte_at(input logic [SLOT_W-1:0] slot, input int offset);
    byte_at = mem[beat_index(slot, offset / 64)][(offset%64)*8+:8];
  endfunction

  // The int8 weight of element (r, c), index e in the tile, of `slot` (W4: the dequant unit).
  function automatic logic [WEIGHT_BITS-1:0] weight(input logic [SLOT_W-1:0] slot, input int r,
                                                    input int c, input int e);
    int shift;
    int group_row;
    int groups;
    logic [7:0] packed_q;
    logic [7:0] zeros;
    int q4;
    int zero;
    int scale;
    /* verilator lint_off UNUSEDSIGNAL */  // (q4 - z) * s always fits int8 (W4GroupInRange)
    int w;
    /* verilator lint_on UNUSEDSIGNAL */
    shift = {28'b0, w_gshift[slot*4+:4]};
    group_row = r >> shift;
    groups = ROWS >> shift;
    packed_q = byte_at(slot, e / 2);
    zeros = byte_at(slot, QBYTES + groups * COLS + group_row * (COLS / 2) + c / 2);
    q4 = {28'b0, e % 2 == 1 ? packed_q[7:4] : packed_q[3:0]};
    zero = {28'b0, c % 2 == 1 ? zeros[7:4] : zeros[3:0]};
    scale = {24'b0, byte_at(slot, QBYTES + group_row * COLS + c)};
    w = (q4 - zero) * scale;
    weight = w_is_w4[slot] ? w[WEIGHT_BITS-1:0] : byte_at(slot, e);
  endfunction

  for (genvar r = 0; r < ROWS; r++) begin : g_row
    for (genvar c = 0; c < COLS; c++) begin : g_col
      // Element (r, c) of a tile has index e = (r/4)*COLS*4 + c*4 + r%4 (k4-interleaved).
      assign rd_row[(r*COLS+c)*WEIGHT_BITS+:WEIGHT_BITS] =
          weight(rd_slot[r*SLOT_W+:SLOT_W], r, c, (r / 4) * COLS * 4 + c * 4 + r % 4);
    end
  end
endmodule
