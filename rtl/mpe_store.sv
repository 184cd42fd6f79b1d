// The store unit: takes DRAINs in order; each waits for its accumulator tile to be complete,
// then reads one row per cycle and writes it (registered, one cycle later) to card memory. The
// tile's rows are free again after the last read; the run is not done until every write has
// been acknowledged.
module mpe_store #(
    parameter int COLS = 16,
    parameter int ACC_BITS = 32,
    parameter int ACC_RING_ROWS = 64,
    parameter int ROW_W = 6
) (
    input  logic                      clk,
    input  logic                      rst_n,
    input  logic                      q_valid,
    input  logic [15:0]               q_rows,
    input  logic [63:0]               q_addr,
    output logic                      q_pop,
    input  logic                      tile_done,  // a tile's last row reached the accumulators
    output logic [ROW_W-1:0]          rd_row,
    input  logic [COLS*ACC_BITS-1:0]  rd_data,
    output logic                      m_wr_valid,
    output logic [63:0]               m_wr_addr,
    output logic [COLS*ACC_BITS-1:0]  m_wr_data,
    input  logic                      wr_ack,
    output logic                      acc_free_valid,
    output logic [ROW_W:0]            acc_free_rows,
    output logic                      busy
);
  localparam int ROW_BYTES = COLS * ACC_BITS / 8;
  localparam logic [ROW_W:0] RONE = 1;
  logic [ROW_W:0] tiles_ready;
  logic [ROW_W-1:0] drain_ptr;
  logic [15:0] d_left, d_i, d_rows;
  logic [63:0] d_addr;
  logic [31:0] outstanding;

  function automatic logic [ROW_W-1:0] ring(input logic [ROW_W-1:0] base, input logic [15:0] n);
    /* verilator lint_off UNUSEDSIGNAL */  // only the low bits of the sum are a row
    logic [31:0] i;
    /* verilator lint_on UNUSEDSIGNAL */
    i = {{(32 - ROW_W) {1'b0}}, base} + {16'b0, n};
    if (i >= ACC_RING_ROWS) i = i - ACC_RING_ROWS;
    ring = i[ROW_W-1:0];
  endfunction

  wire start = d_left == 0 && q_valid && tiles_ready != 0;
  wire issuing = start || d_left != 0;
  wire [15:0] i = start ? 16'd0 : d_i;
  wire [15:0] rows = start ? q_rows : d_rows;
  wire last_row = i == rows - 16'd1;

  assign q_pop = start;
  assign rd_row = ring(drain_ptr, i);
  assign acc_free_valid = issuing && last_row;
  assign acc_free_rows = rows[ROW_W:0];  // a tile never exceeds the ring
  assign busy = d_left != 0 || m_wr_valid || outstanding != 0;

  always_ff @(posedge clk) begin
    m_wr_addr <= (start ? q_addr : d_addr) + {48'b0, i} * ROW_BYTES;
    m_wr_data <= rd_data;
    if (start) begin
      d_rows <= q_rows;
      d_addr <= q_addr;
      d_i <= 16'd1;
    end else if (d_left != 0) begin
      d_i <= d_i + 16'd1;
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      tiles_ready <= '0;
      drain_ptr <= '0;
      d_left <= '0;
      m_wr_valid <= 1'b0;
      outstanding <= '0;
    end else begin
      m_wr_valid <= issuing;
      if (start) d_left <= q_rows - 16'd1;
      else if (d_left != 0) d_left <= d_left - 16'd1;
      if (acc_free_valid) drain_ptr <= ring(drain_ptr, rows);
      tiles_ready <= tiles_ready + (tile_done ? RONE : '0) - (start ? RONE : '0);
      outstanding <= outstanding + (m_wr_valid ? 32'd1 : 32'd0) - (wr_ack ? 32'd1 : 32'd0);
    end
  end
endmodule
