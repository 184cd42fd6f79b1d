// Parsing and validation of MpeConfig; the default card is the embedded accel/mpe/u280.json.
#include "accel/mpe_config.h"

#include <bit>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <type_traits>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

namespace qsl {
namespace {

#include "accel/mpe_default_config.inc"  // kDefaultMpeConfigJson: accel/mpe/u280.json

using Json = nlohmann::json;

// One entry per field: its JSON key and how to read it into the struct.
struct Field {
  const char* key;
  absl::Status (*read)(const Json& v, MpeConfig& c);
  void (*write)(const MpeConfig& c, Json& j);
};

template <typename T>
absl::Status ReadInto(const Json& v, const char* key, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) return absl::InvalidArgumentError(absl::StrCat(key, ": expected true or false"));
    out = v.get<bool>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return absl::InvalidArgumentError(absl::StrCat(key, ": expected a string"));
    out = v.get<std::string>();
  } else if constexpr (std::is_same_v<T, double>) {
    if (!v.is_number()) return absl::InvalidArgumentError(absl::StrCat(key, ": expected a number"));
    out = v.get<double>();
  } else {
    if (!v.is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(key, ": expected an integer"));
    }
    const int64_t x = v.get<int64_t>();
    if (x < 0 || x > std::numeric_limits<T>::max()) {
      return absl::InvalidArgumentError(absl::StrCat(key, ": ", x, " is out of range"));
    }
    out = static_cast<T>(x);
  }
  return absl::OkStatus();
}

#define QSL_FIELD(member)                                                           \
  Field {                                                                           \
    #member, [](const Json& v, MpeConfig& c) { return ReadInto(v, #member, c.member); }, \
        [](const MpeConfig& c, Json& j) { j[#member] = c.member; }                  \
  }

const std::vector<Field>& Fields() {
  static const std::vector<Field> fields = {
      QSL_FIELD(name),          QSL_FIELD(description),         QSL_FIELD(rows),
      QSL_FIELD(cols),          QSL_FIELD(act_bits),            QSL_FIELD(weight_bits),
      QSL_FIELD(acc_bits),      QSL_FIELD(clock_mhz),           QSL_FIELD(mem_beats_per_cycle),
      QSL_FIELD(mem_latency_cycles), QSL_FIELD(mem_bytes),      QSL_FIELD(weight_buffer_bytes),
      QSL_FIELD(act_buffer_bytes),   QSL_FIELD(acc_buffer_bytes), QSL_FIELD(double_buffer),
      QSL_FIELD(queue_depth),
  };
  return fields;
}
#undef QSL_FIELD

absl::Status Require(bool ok, absl::string_view field, absl::string_view why) {
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

bool PowerOfTwo(int64_t x) { return x > 0 && std::has_single_bit(static_cast<uint64_t>(x)); }

}  // namespace

int64_t MpeConfig::w_slot_bytes() const {
  const int64_t b = int64_t{rows} * cols;
  return (b + kBeatBytes - 1) / kBeatBytes * kBeatBytes;
}

int32_t MpeConfig::w_slots() const {
  return double_buffer ? static_cast<int32_t>(weight_buffer_bytes / w_slot_bytes()) : 1;
}

int64_t MpeConfig::a_slot_bytes() const {
  // A slot holds whole activation rows and whole beats: round down to both.
  const int64_t raw = act_buffer_bytes / a_slots();
  const int64_t unit = std::lcm(int64_t{rows}, kBeatBytes);
  return raw / unit * unit;
}

absl::Status MpeConfig::Validate() const {
  QSL_RETURN_IF_ERROR(Require(PowerOfTwo(rows) && rows >= 4 && rows <= 256, "rows",
                              absl::StrCat(rows, " must be a power of two in [4, 256]")));
  QSL_RETURN_IF_ERROR(Require(PowerOfTwo(cols) && cols >= 4 && cols <= 256, "cols",
                              absl::StrCat(cols, " must be a power of two in [4, 256]")));
  QSL_RETURN_IF_ERROR(Require(act_bits == 8 && weight_bits == 8 && acc_bits == 32,
                              "act_bits/weight_bits/acc_bits",
                              absl::StrCat(act_bits, "/", weight_bits, "/", acc_bits,
                                           ": the numeric contract is int8 x int8 -> int32")));
  QSL_RETURN_IF_ERROR(Require(clock_mhz > 0 && clock_mhz <= 2000, "clock_mhz",
                              absl::StrCat(clock_mhz, " must be in (0, 2000]")));
  QSL_RETURN_IF_ERROR(Require(mem_beats_per_cycle >= 1 && mem_beats_per_cycle <= 64,
                              "mem_beats_per_cycle",
                              absl::StrCat(mem_beats_per_cycle, " must be in [1, 64]")));
  QSL_RETURN_IF_ERROR(Require(mem_latency_cycles >= 1 && mem_latency_cycles <= 100000,
                              "mem_latency_cycles",
                              absl::StrCat(mem_latency_cycles, " must be in [1, 100000]")));
  // The store unit drains one accumulator row (cols int32) per cycle into the write port.
  QSL_RETURN_IF_ERROR(Require(int64_t{cols} * 4 <= mem_bytes_per_cycle(), "mem_beats_per_cycle",
                              absl::StrCat("the write port (", mem_bytes_per_cycle(),
                                           " B/cycle) must take one accumulator row (",
                                           cols * 4, " B) per cycle")));
  QSL_RETURN_IF_ERROR(Require(mem_bytes >= (int64_t{1} << 20) && mem_bytes % kBeatBytes == 0,
                              "mem_bytes", "must be at least 1 MiB and a multiple of 64"));
  QSL_RETURN_IF_ERROR(Require(queue_depth >= 1 && queue_depth <= 64, "queue_depth",
                              absl::StrCat(queue_depth, " must be in [1, 64]")));
  QSL_RETURN_IF_ERROR(Require(weight_buffer_bytes >= w_slot_bytes() * (double_buffer ? 2 : 1),
                              "weight_buffer_bytes",
                              absl::StrCat(weight_buffer_bytes, " holds fewer than ",
                                           double_buffer ? 2 : 1, " tiles of ", w_slot_bytes(),
                                           " B")));
  QSL_RETURN_IF_ERROR(Require(w_slots() <= 4096, "weight_buffer_bytes",
                              "more than 4096 tile slots"));
  QSL_RETURN_IF_ERROR(Require(a_slot_bytes() >= rows && a_slot_bytes() / kBeatBytes <= 65535,
                              "act_buffer_bytes",
                              absl::StrCat(act_buffer_bytes, ": each of ", a_slots(),
                                           " slots must hold at least one ", rows,
                                           "-byte row and at most 65535 beats")));
  QSL_RETURN_IF_ERROR(Require(acc_tile_rows() >= 1 && acc_ring_rows() <= 65536,
                              "acc_buffer_bytes",
                              absl::StrCat(acc_buffer_bytes, ": the accumulator ring must hold ",
                                           double_buffer ? 2 : 1, " to 65536 rows of ",
                                           cols * 4, " B")));
  return absl::OkStatus();
}

absl::StatusOr<MpeConfig> ParseMpeConfig(absl::string_view json_text) {
  Json j = Json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("expected a JSON object");
  MpeConfig c;
  for (const Field& f : Fields()) {
    auto it = j.find(f.key);
    if (it == j.end()) {
      return absl::InvalidArgumentError(absl::StrCat(f.key, ": missing (every field is required)"));
    }
    QSL_RETURN_IF_ERROR(f.read(*it, c));
  }
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (const Field& f : Fields()) known |= key == f.key;
    if (!known) return absl::InvalidArgumentError(absl::StrCat(key, ": unknown field"));
  }
  QSL_RETURN_IF_ERROR(c.Validate());
  return c;
}

absl::StatusOr<MpeConfig> LoadMpeConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open MPE config"));
  std::stringstream ss;
  ss << in.rdbuf();
  auto c = ParseMpeConfig(ss.str());
  if (!c.ok()) return Annotate(c.status(), path);
  return c;
}

std::string MpeConfigToJson(const MpeConfig& c) {
  Json j = Json::object();
  for (const Field& f : Fields()) f.write(c, j);
  return j.dump(2);
}

const MpeConfig& DefaultMpeConfig() {
  static const MpeConfig c = [] {
    auto parsed = ParseMpeConfig(kDefaultMpeConfigJson);
    if (!parsed.ok()) {
      // The file is compiled in and checked by mpe_config_test; this cannot happen in a build
      // that passed its tests.
      std::fprintf(stderr, "accel/mpe/u280.json: %s\n", std::string(parsed.status().message()).c_str());
      std::abort();
    }
    return *parsed;
  }();
  return c;
}

}  // namespace qsl
