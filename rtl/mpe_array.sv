// The weight-stationary systolic array: ROWS x COLS int8 MACs with int32 partial sums flowing
// down the columns. A token row issued at cycle t enters row r at t + 1 + r (activations are
// skewed by r registers, and each row broadcasts its activation to every column); the column
// sums leave the bottom, with the token's tag, at t + ROWS + 1.
//
// Weights travel with the data: a STREAM starting at cycle s latches row r of its tile at the
// end of cycle s + r (a token walks down the rows), exactly when the previous tile's last token
// has passed row r. One weight register per PE is enough, tiles follow each other with no
// bubble, and the slot is free after row ROWS-1 has latched (latch_done).
module mpe_array #(
    parameter int ROWS = 16,
    parameter int COLS = 16,
    parameter int ACT_BITS = 8,
    parameter int WEIGHT_BITS = 8,
    parameter int ACC_BITS = 32,
    parameter int SLOT_W = 2,
    parameter int TAG_W = 8
) (
    input  logic                         clk,
    input  logic                         rst_n,
    // one token row per cycle
    input  logic                         in_valid,
    input  logic [ROWS*ACT_BITS-1:0]     in_act,
    input  logic [TAG_W-1:0]             in_tag,
    // tile latch: starts at row 0 in the cycle a STREAM starts
    input  logic                         latch_start,
    input  logic [SLOT_W-1:0]            latch_slot,
    output logic [ROWS*SLOT_W-1:0]       lat_slot,  // the slot row r latches from
    input  logic [ROWS*COLS*WEIGHT_BITS-1:0] w_rows,  // row r of slot lat_slot[r], decoded
    output logic                         latch_done,
    // column sums
    output logic                         out_valid,
    output logic [TAG_W-1:0]             out_tag,
    output logic [COLS*ACC_BITS-1:0]     out_psum,
    output logic                         busy
);
  logic [ROWS*ACT_BITS-1:0] a_in;
  logic [ROWS:0] tag_valid;
  logic [TAG_W-1:0] tag[ROWS+1];
  logic [ROWS-1:0] lat_valid;
  logic [ROWS-1:1] lat_valid_q;
  logic [SLOT_W-1:0] lat_slot_q[ROWS];
  logic signed [ACC_BITS-1:0] psum[ROWS][COLS];
  logic signed [ACT_BITS-1:0] act[ROWS];  // row r's activation in this cycle

  assign lat_valid[0] = latch_start;
  assign lat_slot[SLOT_W-1:0] = latch_slot;
  for (genvar r = 1; r < ROWS; r++) begin : g_lat
    assign lat_valid[r] = lat_valid_q[r];
    assign lat_slot[r*SLOT_W+:SLOT_W] = lat_slot_q[r];
  end
  assign latch_done = lat_valid[ROWS-1];

  // Skew: row r sees a_in delayed by r registers.
  assign act[0] = a_in[ACT_BITS-1:0];
  for (genvar r = 1; r < ROWS; r++) begin : g_skew
    logic signed [ACT_BITS-1:0] chain[r];
    always_ff @(posedge clk) chain[0] <= a_in[r*ACT_BITS+:ACT_BITS];
    for (genvar k = 1; k < r; k++) begin : g_delay
      always_ff @(posedge clk) chain[k] <= chain[k-1];
    end
    assign act[r] = chain[r-1];
  end

  always_ff @(posedge clk) begin
    a_in <= in_act;
    tag[0] <= in_tag;
  end
  for (genvar k = 1; k <= ROWS; k++) begin : g_tag
    always_ff @(posedge clk) tag[k] <= tag[k-1];
  end
  for (genvar r = 1; r < ROWS; r++) begin : g_lat_slot
    always_ff @(posedge clk) lat_slot_q[r] <= lat_slot[(r-1)*SLOT_W+:SLOT_W];
  end

  // The processing elements: latch a weight, multiply-accumulate into the column's sum.
  for (genvar r = 0; r < ROWS; r++) begin : g_row
    for (genvar c = 0; c < COLS; c++) begin : g_pe
      logic signed [ACC_BITS-1:0] above;
      if (r == 0) begin : g_top
        assign above = '0;
      end else begin : g_below
        assign above = psum[r-1][c];
      end
      localparam int PB = ACT_BITS + WEIGHT_BITS;  // a product's bits (one DSP multiplier)
      logic signed [WEIGHT_BITS-1:0] w_q;
      logic signed [ACC_BITS-1:0] sum_q;
      logic signed [PB-1:0] product;
      assign product = act[r] * w_q;
      always_ff @(posedge clk) begin
        if (lat_valid[r]) w_q <= w_rows[(r*COLS+c)*WEIGHT_BITS+:WEIGHT_BITS];
        sum_q <= above + {{(ACC_BITS - PB) {product[PB-1]}}, product};
      end
      assign psum[r][c] = sum_q;
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      tag_valid <= '0;
      lat_valid_q <= '0;
    end else begin
      tag_valid <= {tag_valid[ROWS-1:0], in_valid};
      lat_valid_q <= lat_valid[ROWS-2:0];
    end
  end

  assign out_valid = tag_valid[ROWS];
  assign out_tag = tag[ROWS];
  for (genvar c = 0; c < COLS; c++) begin : g_out
    assign out_psum[c*ACC_BITS+:ACC_BITS] = psum[ROWS-1][c];
  end
  assign busy = |tag_valid || |lat_valid_q;
endmodule
