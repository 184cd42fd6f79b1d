// The quantizer end to end on the bundled checkpoint: what the packed file holds is bit for bit
// what the contract's grid makes of the checkpoint's weights, and the file loads as a model.
#include <cstdio>
#include <cstring>
#include <string>

#include "engine/model.h"
#include "format/checkpoint.h"
#include "format/packed_file.h"
#include "gtest/gtest.h"
#include "quantize/grid.h"
#include "quantize/quantize.h"

namespace qsl {
namespace {

const std::string kModel = std::string(QSL_SOURCE_DIR) + "/models/qsl-tiny-llama";

// Compares the file's linear `base` with RTN of the checkpoint's fp32 weights, packed.
void ExpectSameLinear(const HfCheckpoint& ck, const PackedModel& file, const std::string& base,
                      WeightFormat format) {
  auto w = ck.ReadF32(base + ".weight");
  ASSERT_TRUE(w.ok()) << w.status();
  auto view = file.Linear(base);
  ASSERT_TRUE(view.ok()) << view.status();
  const int64_t n = view->layout.n, k = view->layout.k;
  ASSERT_EQ(static_cast<int64_t>(w->size()), n * k) << base;
  auto want = Pack(Rtn(*w, n, k, format), TileShape{});
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_EQ(want->tiles.size(), static_cast<size_t>(view->layout.bytes())) << base;
  EXPECT_EQ(std::memcmp(want->tiles.data(), view->tiles, want->tiles.size()), 0) << base;
  EXPECT_EQ(std::memcmp(want->scale.data(), view->scale, n * sizeof(float)), 0) << base;
}

class QuantizeModelTest : public ::testing::TestWithParam<WeightScheme> {};

TEST_P(QuantizeModelTest, RtnFileHoldsExactlyTheGridOfTheCheckpoint) {
  QuantizeOptions o;
  o.model_dir = kModel;
  // One file per scheme: CTest runs the instances as parallel processes.
  o.out = ::testing::TempDir() + "/round-trip-" + WeightSchemeName(GetParam()) + ".qsl";
  o.scheme = GetParam();
  auto report = QuantizeModel(o);
  ASSERT_TRUE(report.ok()) << report.status();
  auto ck = HfCheckpoint::Open(kModel);
  ASSERT_TRUE(ck.ok()) << ck.status();
  auto file = PackedModel::Open(o.out);
  ASSERT_TRUE(file.ok()) << file.status();
  const WeightFormat format{o.scheme, o.scheme == WeightScheme::kW4 ? o.group : 0};
  int checked = 0;
  for (int64_t l = 0; l < (*ck)->config().num_layers; ++l) {
    for (const char* slot : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                             "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}) {
      ExpectSameLinear(**ck, **file, LayerTensor(l, slot), format);
      ++checked;
    }
  }
  ExpectSameLinear(**ck, **file, "lm_head", {WeightScheme::kW8, 0});  // --lm-head w8
  EXPECT_EQ(checked, 7 * (*ck)->config().num_layers);
  // And it loads as a model whose every linear is on the integer path.
  auto model = Model::Load(o.out);
  ASSERT_TRUE(model.ok()) << model.status();
  for (const auto& [lin, layer] : (*model)->linears()) EXPECT_TRUE(lin->quantized()) << layer;
  model->reset();
  file->reset();
  std::remove(o.out.c_str());
}

INSTANTIATE_TEST_SUITE_P(Schemes, QuantizeModelTest,
                         ::testing::Values(WeightScheme::kW8, WeightScheme::kW4),
                         [](const auto& info) { return WeightSchemeName(info.param); });

}  // namespace
}  // namespace qsl
