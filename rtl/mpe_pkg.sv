// Shared encodings of the MPE: opcodes (accel/command_stream.h), control register offsets and
// status codes, sized so they compare with the signals that carry them.
package mpe_pkg;
  localparam logic [3:0] OP_LOAD_W = 4'd1;
  localparam logic [3:0] OP_LOAD_A = 4'd2;
  localparam logic [3:0] OP_STREAM = 4'd3;
  localparam logic [3:0] OP_DRAIN = 4'd4;

  localparam logic [7:0] REG_CTRL = 8'h00;
  localparam logic [7:0] REG_NUM_CMDS = 8'h10;
  localparam logic [7:0] REG_STATUS = 8'h14;
  localparam logic [7:0] REG_CYCLES_LO = 8'h18;
  localparam logic [7:0] REG_CYCLES_HI = 8'h1c;
  localparam logic [7:0] REG_CMDS_DONE = 8'h20;
  localparam logic [7:0] REG_MAGIC = 8'h30;
  localparam logic [7:0] REG_ROWS = 8'h34;
  localparam logic [7:0] REG_COLS = 8'h38;
  localparam logic [7:0] REG_W_SLOTS = 8'h3c;
  localparam logic [7:0] REG_A_SLOT_BYTES = 8'h40;
  localparam logic [7:0] REG_ACC_RING_ROWS = 8'h44;
  localparam logic [7:0] REG_MEM_BEATS = 8'h48;
  localparam logic [7:0] REG_QUEUE_DEPTH = 8'h4c;
  localparam logic [7:0] REG_OPERAND_BITS = 8'h50;
  localparam logic [7:0] REG_DOUBLE_BUFFER = 8'h54;
  localparam logic [31:0] MPE_MAGIC = 32'h3145504d;  // "MPE1"

  localparam logic [31:0] STATUS_OK = 32'd0;
  localparam logic [31:0] STATUS_BAD_COMMAND = 32'd1;  // unknown opcode or reserved bits set
endpackage
