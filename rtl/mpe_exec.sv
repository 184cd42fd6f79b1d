// The execute unit: takes STREAMs in order and issues their token rows into the array, one per
// cycle. A STREAM starts once the array has issued the previous one's last row, its weight slot
// and activation slot are loaded, and (for a tile's first k-tile) the accumulator ring has its
// rows free; it then latches its tile (row r at start + r) and allocates accumulator rows.
module mpe_exec #(
    parameter int W_SLOTS = 4,
    parameter int A_SLOTS = 2,
    parameter int ACC_RING_ROWS = 64,
    parameter int DOUBLE_BUFFER = 1,
    parameter int SLOT_W = 2,
    parameter int ROW_W = 6
) (
    input  logic                  clk,
    input  logic                  rst_n,
    input  logic                  q_valid,
    input  logic [15:0]           q_rows,
    input  logic [31:0]           q_act_row,
    input  logic                  q_first,
    input  logic                  q_last,
    input  logic                  q_pop_act,
    output logic                  q_pop,
    input  logic [2**SLOT_W-1:0]  w_ready,
    input  logic [1:0]            a_ready,
    input  logic                  acc_free_valid,  // a DRAIN read its last row
    input  logic [ROW_W:0]        acc_free_rows,
    // the row issued this cycle
    output logic                  row_valid,
    output logic                  act_slot,
    output logic [31:0]           act_row,
    output logic [ROW_W-1:0]      acc_row,
    output logic                  acc_first,
    output logic                  tile_last,  // the last row of the tile's last k-tile
    output logic                  latch_start,
    output logic [SLOT_W-1:0]     latch_slot,
    output logic                  a_free,
    output logic                  busy
);
  localparam int W_LAST_INDEX = W_SLOTS - 1;
  localparam logic [SLOT_W-1:0] W_LAST = W_LAST_INDEX[SLOT_W-1:0];
  localparam logic [SLOT_W-1:0] SONE = 1;
  localparam logic [ROW_W:0] RONE = 1;

  logic [SLOT_W-1:0] w_head;
  logic a_head;
  logic [ROW_W-1:0] alloc_ptr, tile_base, cur_base;
  logic [ROW_W:0] free_rows, tiles;
  logic [15:0] rows_left, row_i, cur_rows;
  logic [31:0] cur_act_row;
  logic cur_first, cur_last, cur_pop;

  // Ring row `base + n`, wrapped around the accumulator rows.
  function automatic logic [ROW_W-1:0] ring(input logic [ROW_W-1:0] base, input logic [15:0] n);
    /* verilator lint_off UNUSEDSIGNAL */  // only the low bits of the sum are a row
    logic [31:0] i;
    /* verilator lint_on UNUSEDSIGNAL */
    i = {{(32 - ROW_W) {1'b0}}, base} + {16'b0, n};
    if (i >= ACC_RING_ROWS) i = i - ACC_RING_ROWS;
    ring = i[ROW_W-1:0];
  endfunction

  wire idle = rows_left == 0;
  wire rows_free = {{(31 - ROW_W) {1'b0}}, free_rows} >= {16'b0, q_rows};
  wire acc_ok = !q_first || (rows_free && (DOUBLE_BUFFER != 0 || tiles == 0));
  wire start = idle && q_valid && w_ready[w_head] && a_ready[a_head] && acc_ok;
  wire [15:0] i = start ? 16'd0 : row_i;
  wire [15:0] rows = start ? q_rows : cur_rows;
  wire [ROW_W-1:0] base = start ? (q_first ? alloc_ptr : tile_base) : cur_base;
  wire last_row = i == rows - 16'd1;

  assign q_pop = start;
  assign row_valid = start || !idle;
  assign act_slot = a_head;
  assign act_row = (start ? q_act_row : cur_act_row) + {16'b0, i};
  assign acc_row = ring(base, i);
  assign acc_first = start ? q_first : cur_first;
  assign tile_last = (start ? q_last : cur_last) && last_row;
  assign a_free = row_valid && (start ? q_pop_act : cur_pop) && last_row;
  assign latch_start = start;
  assign latch_slot = w_head;
  assign busy = !idle;

  always_ff @(posedge clk) begin
    if (start) begin
      row_i <= 16'd1;
      cur_rows <= q_rows;
      cur_act_row <= q_act_row;
      cur_first <= q_first;
      cur_last <= q_last;
      cur_pop <= q_pop_act;
      cur_base <= base;
    end else if (!idle) begin
      row_i <= row_i + 16'd1;
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      w_head <= '0;
      a_head <= 1'b0;
      alloc_ptr <= '0;
      tile_base <= '0;
      free_rows <= ACC_RING_ROWS[ROW_W:0];
      tiles <= '0;
      rows_left <= '0;
    end else begin
      if (start) begin
        w_head <= w_head == W_LAST ? '0 : w_head + SONE;
        rows_left <= q_rows - 16'd1;
        if (q_first) begin
          tile_base <= alloc_ptr;
          alloc_ptr <= ring(alloc_ptr, q_rows);
        end
      end else if (!idle) begin
        rows_left <= rows_left - 16'd1;
      end
      if (a_free) a_head <= A_SLOTS > 1 ? !a_head : 1'b0;
      free_rows <= free_rows - ((start && q_first) ? q_rows[ROW_W:0] : '0) +
                   (acc_free_valid ? acc_free_rows : '0);
      tiles <= tiles + ((start && q_first) ? RONE : '0) - (acc_free_valid ? RONE : '0);
    end
  end
endmodule
