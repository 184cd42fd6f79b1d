// Command encoding and the card-memory data layouts (see command_stream.h for the bit tables).
#include "accel/command_stream.h"

#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace qsl {

static_assert(std::endian::native == std::endian::little,
              "the card interface is little-endian and packed with memcpy");

namespace {

constexpr uint64_t kReservedMask = (uint64_t{0xf} << 4) | (uint64_t{1} << 11);

uint64_t Bits(uint64_t w, int lo, int width) { return (w >> lo) & ((uint64_t{1} << width) - 1); }

int64_t RoundUpToBeat(int64_t bytes) { return (bytes + 63) / 64 * 64; }

// Bits of word 0 (outside opcode and reserved) and word 1 that `op` may set.
uint64_t UsedBits(Opcode op) {
  constexpr uint64_t kCount = uint64_t{0xffff} << 16;
  switch (op) {
    case Opcode::kLoadWeights: return kCount | (uint64_t{1} << 8) | (uint64_t{0xf} << 12);
    case Opcode::kLoadActivations: return kCount;
    case Opcode::kStream: return kCount | (uint64_t{0x7} << 8) | (uint64_t{0xffffffff} << 32);
    case Opcode::kDrain: return kCount;
  }
  return 0;
}

bool HasAddress(Opcode op) { return op != Opcode::kStream; }

}  // namespace

const char* MpeStatusName(uint32_t status) {
  switch (status) {
    case kMpeOk: return "ok";
    case kMpeBadCommand: return "bad command (unknown opcode or reserved bits set)";
  }
  return "unknown status";
}

const char* OpcodeName(Opcode op) {
  switch (op) {
    case Opcode::kLoadWeights: return "LOAD_W";
    case Opcode::kLoadActivations: return "LOAD_A";
    case Opcode::kStream: return "STREAM";
    case Opcode::kDrain: return "DRAIN";
  }
  return "?";
}

Command Command::LoadWeights(uint64_t addr, uint32_t beats, WeightScheme scheme,
                             uint8_t group_shift) {
  Command c;
  c.op = Opcode::kLoadWeights;
  c.addr = addr;
  c.count = beats;
  c.scheme = scheme;
  c.group_shift = scheme == WeightScheme::kW4 ? group_shift : 0;
  return c;
}

Command Command::LoadActivations(uint64_t addr, uint32_t beats) {
  Command c;
  c.op = Opcode::kLoadActivations;
  c.addr = addr;
  c.count = beats;
  return c;
}

Command Command::Stream(uint32_t rows, uint32_t act_row, bool acc_first, bool acc_last,
                        bool pop_act) {
  Command c;
  c.op = Opcode::kStream;
  c.count = rows;
  c.act_row = act_row;
  c.acc_first = acc_first;
  c.acc_last = acc_last;
  c.pop_act = pop_act;
  return c;
}

Command Command::Drain(uint64_t addr, uint32_t rows) {
  Command c;
  c.op = Opcode::kDrain;
  c.addr = addr;
  c.count = rows;
  return c;
}

std::string ToString(const Command& c) {
  switch (c.op) {
    case Opcode::kLoadWeights:
      return absl::StrCat("LOAD_W ", WeightSchemeName(c.scheme), " beats=", c.count,
                          " gshift=", c.group_shift, " @", c.addr);
    case Opcode::kLoadActivations: return absl::StrCat("LOAD_A beats=", c.count, " @", c.addr);
    case Opcode::kStream:
      return absl::StrCat("STREAM rows=", c.count, " act_row=", c.act_row,
                          c.acc_first ? " first" : "", c.acc_last ? " last" : "",
                          c.pop_act ? " pop_act" : "");
    case Opcode::kDrain: return absl::StrCat("DRAIN rows=", c.count, " @", c.addr);
  }
  return "?";
}

void EncodeCommand(const Command& c, uint8_t out[kCommandBytes]) {
  const bool bit8 = c.op == Opcode::kStream ? c.acc_first : c.scheme == WeightScheme::kW4;
  const uint64_t w0 = static_cast<uint64_t>(c.op) | (uint64_t{bit8} << 8) |
                      (uint64_t{c.acc_last} << 9) | (uint64_t{c.pop_act} << 10) |
                      (uint64_t{c.group_shift} << 12) | (uint64_t{c.count & 0xffff} << 16) |
                      (uint64_t{c.act_row} << 32);
  const uint64_t w1 = c.addr;
  std::memcpy(out, &w0, 8);
  std::memcpy(out + 8, &w1, 8);
}

absl::StatusOr<Command> DecodeCommand(const uint8_t in[kCommandBytes]) {
  uint64_t w0, w1;
  std::memcpy(&w0, in, 8);
  std::memcpy(&w1, in + 8, 8);
  const uint64_t op_bits = Bits(w0, 0, 4);
  if (op_bits < 1 || op_bits > 4) {
    return absl::InvalidArgumentError(absl::StrCat("unknown opcode ", op_bits));
  }
  Command c;
  c.op = static_cast<Opcode>(op_bits);
  const uint64_t stray = w0 & ~(UsedBits(c.op) | 0xf);
  if ((w0 & kReservedMask) != 0 || stray != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(OpcodeName(c.op), ": bits 0x", absl::Hex(stray | (w0 & kReservedMask)),
                     " of word 0 must be zero"));
  }
  if (!HasAddress(c.op) && w1 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(OpcodeName(c.op), ": word 1 must be zero"));
  }
  if (HasAddress(c.op) && w1 % 64 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(OpcodeName(c.op), ": address ", w1, " is not 64-byte aligned"));
  }
  c.count = static_cast<uint32_t>(Bits(w0, 16, 16));
  if (c.count == 0) {
    return absl::InvalidArgumentError(absl::StrCat(OpcodeName(c.op), ": count is zero"));
  }
  c.addr = w1;
  if (c.op == Opcode::kStream) {
    c.acc_first = Bits(w0, 8, 1) != 0;
    c.acc_last = Bits(w0, 9, 1) != 0;
    c.pop_act = Bits(w0, 10, 1) != 0;
    c.act_row = static_cast<uint32_t>(Bits(w0, 32, 32));
  } else if (c.op == Opcode::kLoadWeights) {
    c.scheme = Bits(w0, 8, 1) != 0 ? WeightScheme::kW4 : WeightScheme::kW8;
    c.group_shift = static_cast<uint8_t>(Bits(w0, 12, 4));
    if (c.scheme == WeightScheme::kW8 && c.group_shift != 0) {
      return absl::InvalidArgumentError("LOAD_W: w8 takes no group_shift");
    }
  }
  return c;
}

std::vector<uint8_t> EncodeCommands(std::span<const Command> commands) {
  std::vector<uint8_t> out(commands.size() * kCommandBytes);
  for (size_t i = 0; i < commands.size(); ++i) EncodeCommand(commands[i], &out[i * kCommandBytes]);
  return out;
}

absl::StatusOr<std::vector<Command>> DecodeCommands(std::span<const uint8_t> bytes) {
  if (bytes.size() % kCommandBytes != 0) {
    return absl::InvalidArgumentError(absl::StrCat("command stream of ", bytes.size(),
                                                   " bytes is not a whole number of ",
                                                   kCommandBytes, "-byte commands"));
  }
  std::vector<Command> out;
  out.reserve(bytes.size() / kCommandBytes);
  for (size_t i = 0; i < bytes.size(); i += kCommandBytes) {
    auto c = DecodeCommand(&bytes[i]);
    if (!c.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("command ", i / kCommandBytes, ": ", c.status().message()));
    }
    out.push_back(*c);
  }
  return out;
}

int64_t ActivationBlockBytes(int64_t rows, int64_t k_pad) { return RoundUpToBeat(rows * k_pad); }

void PackActivationBlock(const int8_t* a, int64_t rows, int64_t k_pad, int32_t tile_k,
                         uint8_t* out) {
  const int64_t k_tiles = k_pad / tile_k;
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    for (int64_t t = 0; t < rows; ++t) {
      std::memcpy(out + (kt * rows + t) * tile_k, a + t * k_pad + kt * tile_k, tile_k);
    }
  }
  const int64_t used = rows * k_pad;
  std::memset(out + used, 0, ActivationBlockBytes(rows, k_pad) - used);
}

int64_t AccumulatorRegionBytes(int64_t rows, int32_t cols) { return RoundUpToBeat(rows * cols * 4); }

void UnpackAccumulatorRegion(const uint8_t* region, int64_t rows, int32_t cols, int64_t n0,
                             int64_t n_cols, int32_t* acc, int64_t ldacc) {
  for (int64_t t = 0; t < rows; ++t) {
    std::memcpy(acc + t * ldacc + n0, region + t * cols * 4, n_cols * 4);
  }
}

}  // namespace qsl
