// The activation ring: A_SLOTS (1 or 2) slots of SLOT_BYTES, each holding one activation block
// k-tile major ([k_tiles][rows][ROWS] int8, accel/command_stream.h), so a STREAM reads one
// ROWS-byte token row per cycle.
module mpe_abuf #(
    parameter int ROWS = 16,
    parameter int ACT_BITS = 8,
    parameter int MEM_BEATS = 1,
    parameter int A_SLOTS = 2,
    parameter int SLOT_BYTES = 1024,
    parameter int SLOT_W = 1
) (
    input  logic                         clk,
    input  logic [MEM_BEATS-1:0]         lane_a,
    input  logic [MEM_BEATS*SLOT_W-1:0]  lane_slot,  // activation slots use bit 0
    input  logic [MEM_BEATS*16-1:0]      lane_off,
    input  logic [MEM_BEATS*512-1:0]     lane_data,
    input  logic                         rd_slot,
    input  logic [31:0]                  rd_row,
    output logic [ROWS*ACT_BITS-1:0]     rd_data
);
  localparam int SLOT_BEATS = SLOT_BYTES / 64;
  localparam int BW = A_SLOTS * SLOT_BEATS > 1 ? $clog2(A_SLOTS * SLOT_BEATS) : 1;

  // Organised in 64-byte beats, as it is written.
  logic [511:0] mem[2**BW];

  function automatic logic [BW-1:0] beat_index(input logic slot, input logic [31:0] beat);
    /* verilator lint_off UNUSEDSIGNAL */  // only the low bits of the sum are an index
    logic [31:0] i;
    /* verilator lint_on UNUSEDSIGNAL */
    i = (slot ? SLOT_BEATS : 0) + beat;
    beat_index = i[BW-1:0];
  endfunction

  always_ff @(posedge clk) begin
    for (int l = 0; l < MEM_BEATS; l++) begin
      if (lane_a[l]) begin
        mem[beat_index(lane_slot[l*SLOT_W], {16'b0, lane_off[l*16+:16]})] <= lane_data[l*512+:512];
      end
    end
  end

  // A token row is the ROWS bytes at offset rd_row * ROWS of the slot. (always @*: see mpe_load.)
  always @* begin
    logic [31:0] offset;
    for (int k = 0; k < ROWS; k++) begin
      offset = rd_row * ROWS + k;
      rd_data[k*ACT_BITS+:ACT_BITS] = mem[beat_index(rd_slot, offset / 64)][(offset%64)*8+:8];
    end
  end
endmodule
