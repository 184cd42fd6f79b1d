// How fast the MPE model itself runs on the host: the cycle model over a whole 1.1B decode step,
// and the simulated card executing one linear layer (host time beside the card time it models).
//   build/accel/mpe_bench
#include <random>

#include "accel/cycle_model.h"
#include "accel/driver.h"
#include "accel/sim_card.h"
#include "accel/sim_report.h"
#include "accel/testing/random_linear.h"
#include "benchmark/benchmark.h"

namespace qsl {
namespace {

void BM_AccountDecodeStep(benchmark::State& state) {
  const MpeConfig& c = DefaultMpeConfig();
  std::vector<std::vector<Command>> streams;
  const auto shape = ParseModelShape("tinyllama-1.1b");
  for (const LinearShape& s : LinearShapes(*shape)) {
    auto layout = TiledLayout::Make(WeightScheme::kW8, s.n, s.k, c.tile());
    auto plan = PlanLinear(c, *layout, 1 << 20, 1ull << 36, state.range(0));
    for (int64_t i = 0; i < s.count; ++i) streams.push_back(plan->commands);
  }
  int64_t commands = 0, cycles = 0;
  for (auto _ : state) {
    for (const auto& s : streams) {
      cycles += AccountCycles(c, s)->cycles;
      commands += static_cast<int64_t>(s.size());
    }
  }
  state.counters["commands/s"] = benchmark::Counter(static_cast<double>(commands),
                                                    benchmark::Counter::kIsRate);
  state.counters["card_ms/step"] = cycles / c.clock_hz() * 1e3 / state.iterations();
}
BENCHMARK(BM_AccountDecodeStep)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond);

void BM_SimCardLinear(benchmark::State& state) {
  const MpeConfig& c = DefaultMpeConfig();
  const WeightScheme scheme = state.range(1) == 4 ? WeightScheme::kW4 : WeightScheme::kW8;
  std::mt19937 rng(1);
  const PackedLinear w = testing::RandomLinear(rng, scheme, 2048, 2048, c.tile(), 128);
  const int64_t m = state.range(0);
  const std::vector<int8_t> a = testing::RandomActivations(rng, m, 2048, 2048);
  std::vector<int32_t> acc(m * 2048);
  MpeDriver driver(std::make_unique<SimCard>(c, 0));
  if (!driver.Add(0, View(w)).ok()) state.SkipWithError("Add failed");
  for (auto _ : state) {
    if (!driver.Matmul(0, a.data(), m, acc.data()).ok()) state.SkipWithError("Matmul failed");
  }
  state.counters["card_us"] = driver.counters().cycles / c.clock_hz() * 1e6 / state.iterations();
}
BENCHMARK(BM_SimCardLinear)
    ->ArgNames({"m", "wbits"})
    ->Args({1, 8})
    ->Args({16, 8})
    ->Args({1, 4})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace qsl
