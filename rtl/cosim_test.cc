// Co-simulation: the RTL under Verilator runs command streams from the real driver and must
// give the CPU kernel's int32 accumulators bit for bit and exactly the cycle model's count.
#include <cstdio>
#include <cstdlib>
#include <random>

#include "absl/strings/str_cat.h"
#include "accel/driver.h"
#include "accel/linear.h"
#include "accel/testing/random_linear.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rtl/verilated_card.h"

namespace qsl::rtl {
namespace {

MpeConfig Config(const std::string& name) {
  auto c = LoadMpeConfig(absl::StrCat(QSL_SOURCE_DIR, "/rtl/configs/", name, ".json"));
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

struct Case {
  WeightScheme scheme;
  int64_t n, k, m;
  int32_t group;
  PlanOptions plan;
  int latency;
};

std::string Describe(const Case& c) {
  return absl::StrCat(WeightSchemeName(c.scheme), " n=", c.n, " k=", c.k, " m=", c.m,
                      " group=", c.group, " block_rows=", c.plan.block_rows,
                      " prefetch=", c.plan.prefetch, " early=", c.plan.early_act_load,
                      " latency=", c.latency);
}

// Runs one case; returns the RTL's cycles (or -1 after a failed expectation).
int64_t RunCase(MpeConfig config, const Case& c, std::mt19937& rng) {
  SCOPED_TRACE(absl::StrCat(config.name, " ", Describe(c)));
  config.mem_latency_cycles = c.latency;
  auto opened = VerilatedCard::Open(config, 0);
  EXPECT_TRUE(opened.ok()) << opened.status();
  if (!opened.ok()) return -1;
  VerilatedCard* card = opened->get();
  MpeDriver driver(std::move(*opened), c.plan);
  const PackedLinear w = testing::RandomLinear(rng, c.scheme, c.n, c.k, config.tile(), c.group);
  const LinearWeightsView v = View(w);
  const std::vector<int8_t> a = testing::RandomActivations(rng, c.m, c.k, v.layout.k_pad());
  std::vector<int32_t> want(c.m * c.n), got(c.m * c.n, -1);
  scalar::MatmulInt8(v, a.data(), c.m, want.data(), c.n);
  EXPECT_TRUE(driver.Add(0, v).ok());
  const absl::Status st = driver.Matmul(0, a.data(), c.m, got.data());
  EXPECT_TRUE(st.ok()) << st;
  if (!st.ok()) return -1;
  EXPECT_EQ(got, want);
  EXPECT_EQ(driver.counters().cycles, card->last_model_account().cycles);
  if (std::getenv("QSL_RTL_TRACE") != nullptr) {
    auto plan = PlanLinear(config, v.layout, 0, 0, c.m, c.plan);
    std::vector<CommandTiming> t;
    (void)AccountCycles(config, plan->commands, &t);
    for (size_t i = 0; i < t.size(); ++i) {
      std::fprintf(stderr, "model cmd %zu %s: dispatch %ld issue %ld done %ld\n", i,
                   ToString(plan->commands[i]).c_str(), static_cast<long>(t[i].dispatch),
                   static_cast<long>(t[i].issue), static_cast<long>(t[i].done));
    }
  }
  return driver.counters().cycles;
}

Case RandomCase(const MpeConfig& config, std::mt19937& rng) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  Case c;
  c.scheme = pick(0, 1) ? WeightScheme::kW4 : WeightScheme::kW8;
  c.n = pick(1, 3 * config.cols + 3);
  c.k = pick(1, 5 * config.rows + 3);
  c.m = pick(0, 3) == 0 ? 1 : pick(1, 40);
  const int32_t groups[] = {4, config.rows / 2 < 4 ? 4 : config.rows / 2, config.rows, 128};
  c.group = groups[pick(0, 3)];
  c.plan.block_rows = pick(0, 2) == 0 ? 0 : pick(1, 12);
  c.plan.prefetch = pick(0, 2) == 0 ? 0 : pick(1, config.w_slots());
  c.plan.early_act_load = pick(0, 1) == 1;
  c.latency = pick(1, 40);
  return c;
}

class Cosim : public ::testing::TestWithParam<std::pair<const char*, int>> {};

TEST_P(Cosim, RandomStreamsAreBitAndCycleExact) {
  const MpeConfig config = Config(GetParam().first);
  std::mt19937 rng(static_cast<uint32_t>(config.rows * 131 + config.cols));
  for (int i = 0; i < GetParam().second; ++i) {
    RunCase(config, RandomCase(config, rng), rng);
    if (HasFailure()) break;
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, Cosim,
                         ::testing::Values(std::make_pair("mpe4x4", 100),
                                           std::make_pair("mpe8x8", 60),
                                           std::make_pair("mpe16x16", 60)),
                         [](const auto& info) { return std::string(info.param.first); });

}  // namespace
}  // namespace qsl::rtl
