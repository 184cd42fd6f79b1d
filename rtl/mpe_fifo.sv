// A command queue: registered FIFO, one push and one pop per cycle. An entry pushed at the end
// of cycle d is at the head from cycle d + 1; one popped at the end of cycle p no longer counts
// from p + 1 (the cycle model's dispatch rule).
module mpe_fifo #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 4
) (
    input  logic                         clk,
    input  logic                         rst_n,
    input  logic                         push,
    input  logic [WIDTH-1:0]             din,
    input  logic                         pop,
    output logic [WIDTH-1:0]             dout,
    output logic [$clog2(DEPTH+1)-1:0]   count
);
  localparam int PW = DEPTH > 1 ? $clog2(DEPTH) : 1;
  localparam int CW = $clog2(DEPTH + 1);
  localparam int LAST_INDEX = DEPTH - 1;
  localparam logic [PW-1:0] LAST = LAST_INDEX[PW-1:0];
  localparam logic [PW-1:0] PONE = 1;
  localparam logic [CW-1:0] CONE = 1;
  logic [WIDTH-1:0] mem[2**PW];
  logic [PW-1:0] rd, wr;

  assign dout = mem[rd];

  always_ff @(posedge clk) begin
    if (push) mem[wr] <= din;
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      rd <= '0;
      wr <= '0;
      count <= '0;
    end else begin
      if (push) wr <= wr == LAST ? '0 : wr + PONE;
      if (pop) rd <= rd == LAST ? '0 : rd + PONE;
      count <= count + (push ? CONE : '0) - (pop ? CONE : '0);
    end
  end
endmodule
