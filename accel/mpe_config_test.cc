// MpeConfig: the default file, derived sizes, and a clear error for every kind of bad input.
#include "accel/mpe_config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace qsl {
namespace {

using ::testing::HasSubstr;

std::string WithField(const std::string& key, const nlohmann::json& value) {
  nlohmann::json j = nlohmann::json::parse(MpeConfigToJson(DefaultMpeConfig()));
  if (value.is_null()) {
    j.erase(key);
  } else {
    j[key] = value;
  }
  return j.dump();
}

TEST(MpeConfig, DefaultIsTheDocumentedFile) {
  auto file = LoadMpeConfig(std::string(QSL_SOURCE_DIR) + "/accel/mpe/u280.json");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(*file, DefaultMpeConfig());
  const MpeConfig& c = DefaultMpeConfig();
  EXPECT_EQ(c.rows, 128);
  EXPECT_EQ(c.cols, 64);
  EXPECT_EQ(c.macs_per_cycle(), 8192);
  EXPECT_EQ(c.mem_bytes_per_cycle(), 1536);
  EXPECT_NEAR(c.mem_bandwidth_gbps(), 460.8, 1e-9);
  EXPECT_EQ(c.w_slot_bytes(), 8192);
  EXPECT_EQ(c.w_slots(), 128);
  EXPECT_EQ(c.a_slots(), 2);
  EXPECT_EQ(c.a_slot_bytes(), 1 << 20);
  EXPECT_EQ(c.acc_ring_rows(), 1024);
  EXPECT_EQ(c.acc_tile_rows(), 512);
}

TEST(MpeConfig, JsonRoundTrip) {
  auto again = ParseMpeConfig(MpeConfigToJson(DefaultMpeConfig()));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, DefaultMpeConfig());
}

TEST(MpeConfig, SingleBufferedRingsHaveOneSlot) {
  auto c = ParseMpeConfig(WithField("double_buffer", false));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->w_slots(), 1);
  EXPECT_EQ(c->a_slots(), 1);
  EXPECT_EQ(c->a_slot_bytes(), 2 << 20);
  EXPECT_EQ(c->acc_ring_rows(), 1024);
  EXPECT_EQ(c->acc_tile_rows(), 1024);
}

TEST(MpeConfig, SmallTileSlotIsOneBeat) {
  MpeConfig c = DefaultMpeConfig();
  c.rows = 4;
  c.cols = 4;
  EXPECT_EQ(c.w_slot_bytes(), 64);
}

struct BadCase {
  std::string key;
  nlohmann::json value;  // null: remove the key
  std::string message;
};

class MpeConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(MpeConfigErrors, NamesTheField) {
  auto c = ParseMpeConfig(WithField(GetParam().key, GetParam().value));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    All, MpeConfigErrors,
    ::testing::Values(BadCase{"rows", nullptr, "rows: missing"},
                      BadCase{"rows", 96, "rows: 96 must be a power of two"},
                      BadCase{"cols", "64", "cols: expected an integer"},
                      BadCase{"cols", -8, "cols: -8 is out of range"},
                      BadCase{"act_bits", 4, "int8 x int8 -> int32"},
                      BadCase{"clock_mhz", 0, "clock_mhz"},
                      BadCase{"mem_beats_per_cycle", 0, "mem_beats_per_cycle"},
                      BadCase{"mem_latency_cycles", 0, "mem_latency_cycles"},
                      BadCase{"weight_buffer_bytes", 8192, "fewer than 2 tiles"},
                      BadCase{"act_buffer_bytes", 64, "act_buffer_bytes"},
                      BadCase{"acc_buffer_bytes", 100, "acc_buffer_bytes"},
                      BadCase{"double_buffer", 1, "double_buffer: expected true or false"},
                      BadCase{"queue_depth", 0, "queue_depth"},
                      BadCase{"colums", 64, "colums: unknown field"}));

TEST(MpeConfig, WritePortMustTakeARowPerCycle) {
  nlohmann::json j = nlohmann::json::parse(MpeConfigToJson(DefaultMpeConfig()));
  j["cols"] = 256;
  j["mem_beats_per_cycle"] = 8;
  auto c = ParseMpeConfig(j.dump());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("write port"));
}

TEST(MpeConfig, ParseAndFileErrors) {
  EXPECT_THAT(std::string(ParseMpeConfig("{").status().message()), HasSubstr("not valid JSON"));
  EXPECT_THAT(std::string(ParseMpeConfig("[1]").status().message()), HasSubstr("JSON object"));
  auto missing = LoadMpeConfig("/nonexistent/card.json");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/card.json"));
}

}  // namespace
}  // namespace qsl
