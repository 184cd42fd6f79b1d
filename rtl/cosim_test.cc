// Co-simulation: the RTL under Verilator runs command streams from the real driver and must
// give the CPU kernel's int32 accumulators bit for bit and exactly the cycle model's count.
#include <cstdio>
#include <cstdlib>
#include <random>

#include "absl/strings/str_cat.h"
#include "accel/driver.h"
#include "accel/linear.h"
#include "accel/device_pool.h"
#include "accel/testing/random_linear.h"
#include "accel/testing/tiny_decoder.h"
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
  c.n = pick(1, 4 * config.cols + 5);
  c.k = pick(1, 8 * config.rows + 5);
  c.m = pick(0, 3) == 0 ? 1 : pick(1, 70);
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
                         ::testing::Values(std::make_pair("mpe4x4", 150),
                                           std::make_pair("mpe8x8", 100),
                                           std::make_pair("mpe16x16", 100)),
                         [](const auto& info) { return std::string(info.param.first); });

// A pool of Verilated cards (pipelined over two) generates the same tokens as the CPU kernels.
TEST(RtlPool, GenerationMatchesCpu) {
  DevicePoolOptions o;
  o.config = Config("mpe16x16");
  for (WeightScheme scheme : {WeightScheme::kW8, WeightScheme::kW4}) {
    const qsl::testing::TinyDecoder model(scheme, o.config.tile(), 41);
    std::vector<std::vector<int>> want;
    for (const char* spec : {"cpu", "rtl:2"}) {
      o.spec = spec;
      auto pool = DevicePool::Create(o);
      ASSERT_TRUE(pool.ok()) << pool.status();
      const std::vector<LinearDesc> linears = model.Linears();
      ASSERT_TRUE((*pool)->LoadModel(linears).ok());
      auto got = model.Generate(**pool, qsl::testing::kPrompts, qsl::testing::kSteps);
      ASSERT_TRUE(got.ok()) << got.status();
      if (want.empty()) {
        want = *got;
      } else {
        EXPECT_EQ(*got, want) << WeightSchemeName(scheme);
        for (const CardStatus& c : (*pool)->Cards()) EXPECT_GT(c.counters.cycles, 0) << c.name;
      }
    }
  }
}

TEST(RtlCard, BadCommandStopsWithStatus) {
  auto card = VerilatedCard::Open(Config("mpe4x4"), 0);
  ASSERT_TRUE(card.ok()) << card.status();
  Command bad = Command::Drain(0, 1);
  bad.op = static_cast<Opcode>(9);
  const Command stream[] = {bad};
  auto run = (*card)->ExecuteUnchecked(stream);
  ASSERT_FALSE(run.ok());
  EXPECT_THAT(std::string(run.status().message()), ::testing::HasSubstr("bad command"));
}

TEST(RtlCard, IdentityMustMatchTheConfig) {
  MpeConfig c = Config("mpe16x16");
  c.queue_depth = 3;
  auto card = VerilatedCard::Open(c, 0);
  ASSERT_FALSE(card.ok());
  EXPECT_THAT(std::string(card.status().message()), ::testing::HasSubstr("queue depth 4"));
  c.name = "u280";
  EXPECT_THAT(std::string(VerilatedCard::Open(c, 0).status().message()),
              ::testing::HasSubstr("no Verilated MPE build for config 'u280'"));
}

}  // namespace
}  // namespace qsl::rtl
