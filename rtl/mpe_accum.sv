// The accumulator ring: ACC_RING_ROWS rows of COLS int32. The array's column sums of a token
// are added to (or, for a tile's first k-tile, written over) their row in the cycle they leave
// the array; the store unit reads rows back for DRAIN. Additions wrap like int32.
module mpe_accum #(
    parameter int COLS = 16,
    parameter int ACC_BITS = 32,
    parameter int ACC_RING_ROWS = 64,
    parameter int ROW_W = 6
) (
    input  logic                      clk,
    input  logic                      in_valid,
    input  logic [ROW_W-1:0]          in_row,
    input  logic                      in_first,
    input  logic [COLS*ACC_BITS-1:0]  in_psum,
    input  logic [ROW_W-1:0]          rd_row,
    output logic [COLS*ACC_BITS-1:0]  rd_data
);
  logic [COLS*ACC_BITS-1:0] mem[ACC_RING_ROWS];

  always_ff @(posedge clk) begin
    if (in_valid) begin
      for (int c = 0; c < COLS; c++) begin
        mem[in_row][c*ACC_BITS+:ACC_BITS] <=
            (in_first ? '0 : mem[in_row][c*ACC_BITS+:ACC_BITS]) + in_psum[c*ACC_BITS+:ACC_BITS];
      end
    end
  end
  assign rd_data = mem[rd_row];
endmodule
