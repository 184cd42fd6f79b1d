// The MPE on the bundled model (models/qsl-tiny-llama), RTN-quantized to W8 and W4:
//  - every linear layer on the simulated card (default 128x64 card and the 16x16 co-simulation
//    card) and, when built, on the RTL under Verilator gives the CPU kernel's accumulators bit for
//    bit, and the RTL's cycle count equals the cycle model's;
//  - greedy generation through the engine's forward pass gives identical tokens on the CPU
//    kernels, sim:1, sim:4 (pipelined), sim:4 with a card killed mid-generation, and (a short
//    run) a Verilated card.
#include <algorithm>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "accel/device_pool.h"
#include "accel/linear.h"
#include "accel/sim_card.h"
#include "accel/testing/random_linear.h"
#include "accel/testing/rtn.h"
#include "engine/forward.h"
#include "engine/linear_backend.h"
#include "engine/model.h"
#include "format/checkpoint.h"
#include "gtest/gtest.h"
#ifdef QSL_HAVE_RTL
#include "rtl/verilated_card.h"
#endif

namespace qsl {
namespace {

const std::string kModelDir = std::string(QSL_SOURCE_DIR) + "/models/qsl-tiny-llama";
// Divides the 16-row and the 128-row tiles, so every tile carries its own group metadata.
constexpr int32_t kGroup = 16;

MpeConfig CosimCard() {
  auto c = LoadMpeConfig(std::string(QSL_SOURCE_DIR) + "/rtl/configs/mpe16x16.json");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

// The bundled model with every linear RTN-quantized and packed at `tile`.
struct QuantizedModel {
  std::unique_ptr<Model> model;
  std::vector<std::string> names;  // of each linear, in Model::linears() order
};

absl::StatusOr<QuantizedModel> Quantize(WeightScheme scheme, TileShape tile) {
  auto ck = HfCheckpoint::Open(kModelDir);
  if (!ck.ok()) return ck.status();
  auto fp = Model::FromCheckpoint(**ck);
  if (!fp.ok()) return fp.status();
  auto packed = std::make_shared<std::vector<std::unique_ptr<PackedLinear>>>();
  QuantizedModel out;
  auto quantize = [&](Linear& lin, const std::string& name) -> absl::Status {
    auto p = scheme == WeightScheme::kW8
                 ? PackW8(testing::RtnW8(lin.w.data(), lin.n, lin.k), tile)
                 : PackW4(testing::RtnW4(lin.w.data(), lin.n, lin.k, kGroup), tile);
    if (!p.ok()) return p.status();
    packed->push_back(std::make_unique<PackedLinear>(*std::move(p)));
    lin.q = View(*packed->back(), lin.bias.empty() ? nullptr : lin.bias.data());
    lin.w.clear();
    out.names.push_back(name);
    return absl::OkStatus();
  };
  std::vector<LayerWeights> layers = (*fp)->layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    for (LinearSlot s : {LinearSlot::kQ, LinearSlot::kK, LinearSlot::kV, LinearSlot::kO,
                         LinearSlot::kGate, LinearSlot::kUp, LinearSlot::kDown}) {
      if (auto st = quantize(layers[i].slot(s), absl::StrCat(i, ".", LinearSlotName(s))); !st.ok()) {
        return st;
      }
    }
  }
  Linear lm_head = (*fp)->lm_head();
  if (auto st = quantize(lm_head, "lm_head"); !st.ok()) return st;
  auto tok = Tokenizer::FromBytes((*ck)->tokenizer().bytes(), kModelDir);
  if (!tok.ok()) return tok.status();
  out.model = std::make_unique<Model>((*fp)->config(), *std::move(tok), (*fp)->embed(),
                                      std::move(layers), (*fp)->final_norm(), std::move(lm_head),
                                      packed);
  return out;
}

class LayerTest : public ::testing::TestWithParam<WeightScheme> {};

// Every linear layer of the bundled model on `card`: accumulators equal the scalar reference.
void ExpectEveryLayerExact(std::unique_ptr<CardTransport> card, const QuantizedModel& qm,
                           const std::function<void(const std::string&)>& after_each = nullptr) {
  MpeDriver driver(std::move(card));
  std::mt19937 rng(3);
  for (const auto& [lin, layer] : qm.model->linears()) {
    const LinearWeightsView& v = lin->q;
    const std::string& name = qm.names[lin->id];
    SCOPED_TRACE(name);
    const int64_t m = 1 + lin->id % 5;
    const std::vector<float> x = testing::RandomFloats(rng, m, v.layout.k);
    std::vector<int8_t> a(m * v.layout.k_pad());
    std::vector<float> scale(m);
    QuantizeActivations(x.data(), m, v.layout.k, v.layout.k, v.layout.k_pad(), a.data(),
                        scale.data());
    std::vector<int32_t> want(m * v.layout.n), got(m * v.layout.n);
    scalar::MatmulInt8(v, a.data(), m, want.data(), v.layout.n);
    ASSERT_TRUE(driver.Add(lin->id, v).ok());
    const absl::Status st = driver.Matmul(lin->id, a.data(), m, got.data());
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_EQ(got, want);
    if (after_each) after_each(name);
  }
}

TEST_P(LayerTest, EveryLinearOnTheSimulatedCards) {
  for (const MpeConfig& config : {DefaultMpeConfig(), CosimCard()}) {
    SCOPED_TRACE(config.name);
    auto qm = Quantize(GetParam(), config.tile());
    ASSERT_TRUE(qm.ok()) << qm.status();
    ExpectEveryLayerExact(std::make_unique<SimCard>(config, 0), *qm);
  }
}

#ifdef QSL_HAVE_RTL
TEST_P(LayerTest, EveryLinearOnTheRtlIsBitAndCycleExact) {
  const MpeConfig config = CosimCard();
  auto qm = Quantize(GetParam(), config.tile());
  ASSERT_TRUE(qm.ok()) << qm.status();
  auto card = rtl::VerilatedCard::Open(config, 0);
  ASSERT_TRUE(card.ok()) << card.status();
  rtl::VerilatedCard* rtl = card->get();
  int64_t compared = 0;
  ExpectEveryLayerExact(std::move(*card), *qm, [&](const std::string& name) {
    // Each Matmul is one batch: the RTL's cycle counter against the model's account.
    const int64_t rtl_cycles = (int64_t{rtl->ReadRegister(mpe_regs::kCyclesHi)} << 32) |
                               rtl->ReadRegister(mpe_regs::kCyclesLo);
    EXPECT_EQ(rtl_cycles, rtl->last_model_account().cycles) << name;
    ++compared;
  });
  EXPECT_EQ(compared, static_cast<int64_t>(qm->names.size()));
}
#endif

INSTANTIATE_TEST_SUITE_P(Schemes, LayerTest,
                         ::testing::Values(WeightScheme::kW8, WeightScheme::kW4),
                         [](const auto& info) { return WeightSchemeName(info.param); });

// Linear layers through a device pool (what the engine's card backend will do).
class PoolBackend final : public LinearBackend {
 public:
  explicit PoolBackend(DevicePool& pool) : pool_(pool) {}
  absl::Status Run(const Linear& lin, const float* x, int64_t m, float* y) override {
    return pool_.Linear(lin.id, x, m, y);
  }

 private:
  DevicePool& pool_;
};

// Greedy continuations of two prompts decoded together (prefill as two chunks, then one token
// of each per step).
absl::StatusOr<std::vector<std::vector<int32_t>>> Greedy(const Model& model,
                                                         LinearBackend& backend, int steps) {
  const std::vector<std::string> prompts = {"The :mod:`os` module", "Return a"};
  std::vector<std::vector<int32_t>> out;
  ForwardBatch batch;
  int32_t max_len = 0;
  for (size_t s = 0; s < prompts.size(); ++s) {
    out.push_back(model.tokenizer().Encode(prompts[s], true));
    const int32_t n = static_cast<int32_t>(out[s].size());
    batch.chunks.push_back({static_cast<int32_t>(s), 0, n, false});
    batch.tokens.insert(batch.tokens.end(), out[s].begin(), out[s].end());
    max_len = std::max(max_len, n + steps);
  }
  Transformer tf(model, backend);
  ContiguousKvCache cache(model.config(), static_cast<int32_t>(prompts.size()), max_len);
  std::vector<float> logits;
  const int64_t vocab = model.config().vocab_size;
  for (int step = 0; step < steps; ++step) {
    if (auto st = tf.Forward(batch, cache, logits); !st.ok()) return st;
    ForwardBatch next;
    for (size_t s = 0; s < out.size(); ++s) {
      const float* row = &logits[s * vocab];
      const int32_t token = static_cast<int32_t>(std::max_element(row, row + vocab) - row);
      next.chunks.push_back({static_cast<int32_t>(s), static_cast<int32_t>(out[s].size()), 1, false});
      next.tokens.push_back(token);
      out[s].push_back(token);
    }
    batch = std::move(next);
  }
  return out;
}

std::unique_ptr<DevicePool> LoadedPool(const std::string& spec, const Model& model) {
  DevicePoolOptions o;
  o.spec = spec;
  auto pool = DevicePool::Create(o);
  EXPECT_TRUE(pool.ok()) << pool.status();
  std::vector<LinearDesc> linears;
  for (const auto& [lin, layer] : model.linears()) linears.push_back({lin->q, layer});
  EXPECT_TRUE((*pool)->LoadModel(linears).ok());
  return *std::move(pool);
}

class GenerationTest : public ::testing::TestWithParam<WeightScheme> {};

TEST_P(GenerationTest, SameTokensOnCpuSim1Sim4AndAfterAFailover) {
  constexpr int kSteps = 6;
  auto qm = Quantize(GetParam(), DefaultMpeConfig().tile());
  ASSERT_TRUE(qm.ok()) << qm.status();
  const Model& model = *qm->model;
  CpuLinearBackend cpu;
  auto want = Greedy(model, cpu, kSteps);
  ASSERT_TRUE(want.ok()) << want.status();

  // (The pool's own cpu path is the same kernel as CpuLinearBackend; device_pool_test covers it.)
  int64_t card1_commands = 0;
  for (const char* spec : {"sim:1", "sim:4"}) {
    auto pool = LoadedPool(spec, model);
    PoolBackend backend(*pool);
    auto got = Greedy(model, backend, kSteps);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, *want) << spec;
    if (std::string(spec) == "sim:4") card1_commands = pool->Cards()[1].counters.commands;
  }
  // Kill card 1 halfway through its share of the work: the run must not notice.
  auto pool = LoadedPool("sim:4", model);
  ASSERT_TRUE(pool->InjectFault(1, card1_commands / 2).ok());
  PoolBackend backend(*pool);
  auto got = Greedy(model, backend, kSteps);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, *want);
  EXPECT_EQ(pool->failovers(), 1);
  EXPECT_FALSE(pool->Cards()[1].up);
}

#ifdef QSL_HAVE_RTL
// A short greedy run on a Verilated card (the model quantized at the 16x16 card's tiles).
TEST_P(GenerationTest, SameTokensOnTheRtlCard) {
  constexpr int kSteps = 3;
  DevicePoolOptions o;
  o.spec = "rtl:1";
  o.config = CosimCard();
  auto qm = Quantize(GetParam(), o.config.tile());
  ASSERT_TRUE(qm.ok()) << qm.status();
  CpuLinearBackend cpu;
  auto want = Greedy(*qm->model, cpu, kSteps);
  ASSERT_TRUE(want.ok()) << want.status();
  auto pool = DevicePool::Create(o);
  ASSERT_TRUE(pool.ok()) << pool.status();
  std::vector<LinearDesc> linears;
  for (const auto& [lin, layer] : qm->model->linears()) linears.push_back({lin->q, layer});
  ASSERT_TRUE((*pool)->LoadModel(linears).ok());
  PoolBackend backend(**pool);
  auto got = Greedy(*qm->model, backend, kSteps);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, *want);
}
#endif

INSTANTIATE_TEST_SUITE_P(Schemes, GenerationTest,
                         ::testing::Values(WeightScheme::kW8, WeightScheme::kW4),
                         [](const auto& info) { return WeightSchemeName(info.param); });

}  // namespace
}  // namespace qsl
