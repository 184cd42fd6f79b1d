#include "engine/test_model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>

#include "format/checkpoint.h"

namespace qsl::testing {

namespace {

const std::string kBundled = std::string(QSL_SOURCE_DIR) + "/models/qsl-tiny-llama";

template <typename T>
T OrDie(absl::StatusOr<T> v) {
  if (!v.ok()) {
    std::fprintf(stderr, "test model: %s\n", v.status().ToString().c_str());
    std::abort();
  }
  return std::move(*v);
}

std::vector<float> Normal(size_t n, float stddev, std::mt19937_64& rng) {
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

Linear RandomLinear(int64_t n, int64_t k, float stddev, std::mt19937_64& rng) {
  Linear l;
  l.n = n;
  l.k = k;
  l.w = Normal(static_cast<size_t>(n * k), stddev, rng);
  return l;
}

float Rne(float x) { return std::nearbyint(x); }

// Per-channel symmetric int8 level of W: q in [-127, 127], w ~ q * scale.
W8Weights RtnW8(const Linear& lin) {
  W8Weights w{lin.n, lin.k, std::vector<int8_t>(static_cast<size_t>(lin.n * lin.k)),
              std::vector<float>(static_cast<size_t>(lin.n))};
  for (int64_t n = 0; n < lin.n; ++n) {
    const float* row = lin.w.data() + n * lin.k;
    float amax = 0.0f;
    for (int64_t k = 0; k < lin.k; ++k) amax = std::max(amax, std::fabs(row[k]));
    w.scale[n] = amax / 127.0f;
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int64_t k = 0; k < lin.k; ++k) {
      w.q[n * lin.k + k] = static_cast<int8_t>(std::clamp(Rne(row[k] * inv), -127.0f, 127.0f));
    }
  }
  return w;
}

// The int8 level regrouped as uint4 with a per-group scale s <= 15 and zero z chosen so that
// (q4 - z) * s never leaves [-127, 127].
W4Weights RtnW4(const Linear& lin) {
  const W8Weights w8 = RtnW8(lin);
  W4Weights w;
  w.n = lin.n;
  w.k = lin.k;
  w.group = 128;
  w.scale = w8.scale;
  w.q4.resize(w8.q.size());
  w.gscale.resize(static_cast<size_t>(w.n * w.num_groups()));
  w.gzero.resize(w.gscale.size());
  for (int64_t n = 0; n < w.n; ++n) {
    for (int64_t g = 0; g < w.num_groups(); ++g) {
      const int64_t k0 = g * w.group, k1 = std::min(w.k, k0 + w.group);
      const int8_t* q = w8.q.data() + n * w.k;
      const int mn = *std::min_element(q + k0, q + k1), mx = *std::max_element(q + k0, q + k1);
      const int s = std::clamp((mx - mn + 14) / 15, 1, 15);
      const int lo = std::max(0, 15 - 127 / s), hi = std::min(15, 127 / s);
      const int z = std::clamp(static_cast<int>(Rne(static_cast<float>(-mn) / s)), lo, hi);
      w.gscale[n * w.num_groups() + g] = static_cast<uint8_t>(s);
      w.gzero[n * w.num_groups() + g] = static_cast<uint8_t>(z);
      for (int64_t k = k0; k < k1; ++k) {
        const int q4 = static_cast<int>(Rne(static_cast<float>(q[k]) / s)) + z;
        w.q4[n * w.k + k] = static_cast<uint8_t>(std::clamp(q4, 0, 15));
      }
    }
  }
  return w;
}

}  // namespace

ModelConfig TinyConfig(int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads,
                       int64_t intermediate, int64_t vocab) {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = hidden / heads;
  c.vocab_size = vocab;
  c.max_position_embeddings = 2048;
  c.rms_norm_eps = 1e-5f;
  return c;
}

std::unique_ptr<Model> RandomModel(const ModelConfig& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const float in_std = 1.0f / std::sqrt(static_cast<float>(c.hidden_size));
  std::vector<LayerWeights> layers(static_cast<size_t>(c.num_layers));
  for (LayerWeights& l : layers) {
    l.attn_norm.assign(static_cast<size_t>(c.hidden_size), 1.0f);
    l.mlp_norm.assign(static_cast<size_t>(c.hidden_size), 1.0f);
    l.q = RandomLinear(c.q_dim(), c.hidden_size, in_std, rng);
    l.k = RandomLinear(c.kv_dim(), c.hidden_size, in_std, rng);
    l.v = RandomLinear(c.kv_dim(), c.hidden_size, in_std, rng);
    l.o = RandomLinear(c.hidden_size, c.q_dim(), in_std, rng);
    l.gate = RandomLinear(c.intermediate_size, c.hidden_size, in_std, rng);
    l.up = RandomLinear(c.intermediate_size, c.hidden_size, in_std, rng);
    l.down = RandomLinear(c.hidden_size, c.intermediate_size,
                          1.0f / std::sqrt(static_cast<float>(c.intermediate_size)), rng);
  }
  auto embed = Normal(static_cast<size_t>(c.vocab_size * c.hidden_size), 1.0f, rng);
  // Logits with a spread of a few units, so greedy choices are clear and sampling is not flat.
  Linear head = RandomLinear(c.vocab_size, c.hidden_size, 3.0f * in_std, rng);
  auto tok = OrDie(Tokenizer::FromFile(kBundled + "/tokenizer.model"));
  return std::make_unique<Model>(c, std::move(tok), std::move(embed), std::move(layers),
                                 std::vector<float>(static_cast<size_t>(c.hidden_size), 1.0f),
                                 std::move(head));
}

std::unique_ptr<Model> BundledModel() {
  auto ck = OrDie(HfCheckpoint::Open(kBundled));
  return OrDie(Model::FromCheckpoint(*ck));
}

std::unique_ptr<Model> QuantizeRtn(const Model& m, WeightScheme scheme) {
  auto packs = std::make_shared<std::vector<PackedLinear>>();
  const auto pack = [&](const Linear& lin) {
    Linear q;
    q.n = lin.n;
    q.k = lin.k;
    q.bias = lin.bias;
    packs->push_back(OrDie(scheme == WeightScheme::kW8 ? PackW8(RtnW8(lin), TileShape{})
                                                      : PackW4(RtnW4(lin), TileShape{})));
    // Moving a Linear (into the Model) keeps its bias buffer, so the view stays valid.
    q.q = View(packs->back(), q.bias.empty() ? nullptr : q.bias.data());
    return q;
  };
  packs->reserve(m.linears().size());  // the views point into these: no reallocation
  std::vector<LayerWeights> layers;
  for (const LayerWeights& l : m.layers()) {
    LayerWeights ql;
    ql.attn_norm = l.attn_norm;
    ql.mlp_norm = l.mlp_norm;
    for (LinearSlot s : {LinearSlot::kQ, LinearSlot::kK, LinearSlot::kV, LinearSlot::kO,
                         LinearSlot::kGate, LinearSlot::kUp, LinearSlot::kDown}) {
      ql.slot(s) = pack(l.slot(s));
    }
    layers.push_back(std::move(ql));
  }
  Linear head = pack(m.lm_head());
  auto tok = OrDie(Tokenizer::FromBytes(m.tokenizer().bytes(), "test model"));
  return std::make_unique<Model>(m.config(), std::move(tok), m.embed(), std::move(layers),
                                 m.final_norm(), std::move(head), packs);
}

}  // namespace qsl::testing
