// config.json parsing for the Llama family, with the transformers 4 (`rope_theta`,
// `rope_scaling`) and transformers 5 (`rope_parameters`) spellings of RoPE.
#include "format/model_config.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace qsl {

using nlohmann::json;

std::vector<float> RopeConfig::InverseFrequencies(int64_t head_dim) const {
  std::vector<float> inv(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    // transformers: 1 / base ** (arange(0, dim, 2).float() / dim), in fp32.
    const float expo = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv[i] = static_cast<float>(1.0 / std::pow(theta, static_cast<double>(expo)));
  }
  if (type == Type::kLinear) {
    for (float& f : inv) f = static_cast<float>(f / factor);
  } else if (type == Type::kLlama3) {
    // Llama 3.1 frequency-dependent scaling (transformers _compute_llama3_parameters).
    const double low_wavelen = static_cast<double>(original_max_position) / low_freq_factor;
    const double high_wavelen = static_cast<double>(original_max_position) / high_freq_factor;
    for (float& f : inv) {
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen < high_wavelen) continue;
      if (wavelen > low_wavelen) {
        f = static_cast<float>(f / factor);
        continue;
      }
      const double smooth = (static_cast<double>(original_max_position) / wavelen - low_freq_factor) /
                            (high_freq_factor - low_freq_factor);
      f = static_cast<float>((1.0 - smooth) * f / factor + smooth * f);
    }
  }
  return inv;
}

namespace {

// Typed field access with errors that name the field; never throws.
class Fields {
 public:
  Fields(const json& j, const std::string& source) : j_(j), source_(source) {}

  absl::Status Error(const std::string& field, const std::string& why) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": field '", field, "' ", why));
  }
  absl::Status Unsupported(const std::string& what) const {
    return absl::UnimplementedError(absl::StrCat(source_, ": unsupported: ", what));
  }
  bool Has(const std::string& f) const { return j_.contains(f) && !j_.at(f).is_null(); }

  absl::StatusOr<int64_t> Int(const std::string& f, std::optional<int64_t> def = std::nullopt,
                              int64_t min = 1) const {
    if (!Has(f)) {
      if (def) return *def;
      return Error(f, "is missing");
    }
    const json& v = j_.at(f);
    if (!v.is_number_integer()) return Error(f, "must be an integer");
    const int64_t x = v.get<int64_t>();
    if (x < min) return Error(f, absl::StrCat("must be >= ", min, ", got ", x));
    return x;
  }
  absl::StatusOr<double> Num(const json& obj, const std::string& f, std::optional<double> def) const {
    if (!obj.contains(f) || obj.at(f).is_null()) {
      if (def) return *def;
      return Error(f, "is missing");
    }
    const json& v = obj.at(f);
    if (!v.is_number()) return Error(f, "must be a number");
    const double x = v.get<double>();
    if (!std::isfinite(x)) return Error(f, "must be finite");
    return x;
  }
  absl::StatusOr<double> Num(const std::string& f, std::optional<double> def) const {
    return Num(j_, f, def);
  }
  absl::StatusOr<bool> Bool(const std::string& f, bool def) const {
    if (!Has(f)) return def;
    if (!j_.at(f).is_boolean()) return Error(f, "must be true or false");
    return j_.at(f).get<bool>();
  }
  absl::StatusOr<std::string> Str(const std::string& f, std::optional<std::string> def) const {
    if (!Has(f)) {
      if (def) return *def;
      return Error(f, "is missing");
    }
    if (!j_.at(f).is_string()) return Error(f, "must be a string");
    return j_.at(f).get<std::string>();
  }

 private:
  const json& j_;
  const std::string& source_;
};

absl::StatusOr<RopeConfig> ParseRope(const json& j, const Fields& fields) {
  RopeConfig rope;
  // transformers 5 writes rope_parameters {rope_theta, rope_type, ...}; 4.x writes rope_theta at
  // the top level and an optional rope_scaling {type|rope_type, factor, ...}.
  const json* params = nullptr;
  if (j.contains("rope_parameters") && !j.at("rope_parameters").is_null()) {
    params = &j.at("rope_parameters");
  } else if (j.contains("rope_scaling") && !j.at("rope_scaling").is_null()) {
    params = &j.at("rope_scaling");
  }
  if (params != nullptr && !params->is_object()) {
    return fields.Error(j.contains("rope_parameters") ? "rope_parameters" : "rope_scaling",
                        "must be an object");
  }
  double theta = 10000.0;
  if (fields.Has("rope_theta")) {
    auto t = fields.Num("rope_theta", std::nullopt);
    if (!t.ok()) return t.status();
    theta = *t;
  }
  std::string type = "default";
  if (params != nullptr) {
    if (params->contains("rope_theta")) {
      auto t = fields.Num(*params, "rope_theta", std::nullopt);
      if (!t.ok()) return t.status();
      theta = *t;
    }
    for (const char* key : {"rope_type", "type"}) {
      if (params->contains(key) && params->at(key).is_string()) {
        type = params->at(key).get<std::string>();
        break;
      }
    }
  }
  if (theta <= 0) return fields.Error("rope_theta", "must be > 0");
  rope.theta = theta;
  if (type == "default") {
    rope.type = RopeConfig::Type::kDefault;
  } else if (type == "linear" || type == "llama3") {
    auto factor = fields.Num(*params, "factor", std::nullopt);
    if (!factor.ok()) return factor.status();
    if (*factor < 1.0) return fields.Error("factor", "must be >= 1");
    rope.factor = *factor;
    rope.type = type == "linear" ? RopeConfig::Type::kLinear : RopeConfig::Type::kLlama3;
    if (rope.type == RopeConfig::Type::kLlama3) {
      auto lo = fields.Num(*params, "low_freq_factor", std::nullopt);
      auto hi = fields.Num(*params, "high_freq_factor", std::nullopt);
      auto orig = fields.Num(*params, "original_max_position_embeddings", std::nullopt);
      if (!lo.ok()) return lo.status();
      if (!hi.ok()) return hi.status();
      if (!orig.ok()) return orig.status();
      if (*hi <= *lo) return fields.Error("high_freq_factor", "must exceed low_freq_factor");
      if (*orig < 1) return fields.Error("original_max_position_embeddings", "must be >= 1");
      rope.low_freq_factor = *lo;
      rope.high_freq_factor = *hi;
      rope.original_max_position = static_cast<int64_t>(*orig);
    }
  } else {
    return fields.Unsupported(absl::StrCat("rope_type '", type,
                                           "' (supported: default, linear, llama3)"));
  }
  return rope;
}

absl::StatusOr<std::vector<int32_t>> ParseEos(const json& j, const Fields& fields) {
  if (!fields.Has("eos_token_id")) return std::vector<int32_t>{2};
  const json& v = j.at("eos_token_id");
  std::vector<int32_t> ids;
  if (v.is_number_integer()) {
    ids.push_back(v.get<int32_t>());
  } else if (v.is_array()) {
    for (const json& e : v) {
      if (!e.is_number_integer()) return fields.Error("eos_token_id", "must hold integers");
      ids.push_back(e.get<int32_t>());
    }
  } else {
    return fields.Error("eos_token_id", "must be an integer or a list of integers");
  }
  return ids;
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfig::FromJson(const std::string& text,
                                                  const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid JSON: ", e.what()));
  }
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  const Fields f(j, source);
  ModelConfig c;

  static const char* const kArchs[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"};
  if (!f.Has("architectures") || !j.at("architectures").is_array() ||
      j.at("architectures").empty() || !j.at("architectures")[0].is_string()) {
    return f.Unsupported("no 'architectures' list; expected one of " +
                         absl::StrJoin(kArchs, ", "));
  }
  c.architecture = j.at("architectures")[0].get<std::string>();
  if (std::find(std::begin(kArchs), std::end(kArchs), c.architecture) == std::end(kArchs)) {
    return f.Unsupported(absl::StrCat("architecture '", c.architecture, "' (supported: ",
                                      absl::StrJoin(kArchs, ", "), ")"));
  }
  auto model_type = f.Str("model_type", "llama");
  if (!model_type.ok()) return model_type.status();
  c.model_type = *model_type;

  auto hidden_act = f.Str("hidden_act", "silu");
  if (!hidden_act.ok()) return hidden_act.status();
  if (*hidden_act != "silu") {
    return f.Unsupported(absl::StrCat("hidden_act '", *hidden_act, "' (only silu / SwiGLU)"));
  }

auto int_field = [&f](const char* name, int64_t& out,
                       std::optional<int64_t> def = std::nullopt) -> absl::Status {
    auto v = f.Int(name, def);
    if (!v.ok()) return v.status();
    out = *v;
    return absl::OkStatus();
  };
  for (auto [name, member] : {std::pair{"hidden_size", &c.hidden_size},
                              std::pair{"intermediate_size", &c.intermediate_size},
                              std::pair{"num_hidden_layers", &c.num_layers},
                              std::pair{"num_attention_heads", &c.num_heads},
                              std::pair{"vocab_size", &c.vocab_size}}) {
    if (auto s = int_field(name, *member); !s.ok()) return s;
  }
  if (auto s = int_field("num_key_value_heads", c.num_kv_heads, c.num_heads); !s.ok()) return s;
  if (auto s = int_field("head_dim", c.head_dim, c.hidden_size / c.num_heads); !s.ok()) return s;
  if (auto s = int_field("max_position_embeddings", c.max_position_embeddings, 2048); !s.ok()) {
    return s;
  }

  if (c.num_heads % c.num_kv_heads != 0) {
    return f.Error("num_key_value_heads", absl::StrCat("(", c.num_kv_heads,
                                                       ") must divide num_attention_heads (",
                                                       c.num_heads, ")"));
  }
  if (c.head_dim % 2 != 0) return f.Error("head_dim", "must be even for RoPE");

  auto eps = f.Num("rms_norm_eps", 1e-6);
  if (!eps.ok()) return eps.status();
  if (*eps <= 0) return f.Error("rms_norm_eps", "must be > 0");
  c.rms_norm_eps = static_cast<float>(*eps);

  auto rope = ParseRope(j, f);
  if (!rope.ok()) return rope.status();
  c.rope = *rope;

  const bool qwen2 = c.architecture == "Qwen2ForCausalLM";
  auto attn_bias = f.Bool("attention_bias", false);
  auto mlp_bias = f.Bool("mlp_bias", false);
  auto tie = f.Bool("tie_word_embeddings", false);
  if (!attn_bias.ok()) return attn_bias.status();
  if (!mlp_bias.ok()) return mlp_bias.status();
  if (!tie.ok()) return tie.status();
  // Qwen2 always has q/k/v bias and no o_proj bias; Llama's attention_bias covers all four.
  c.attention_bias = qwen2 || *attn_bias;
  c.o_bias = !qwen2 && *attn_bias;
  c.mlp_bias = *mlp_bias;
  c.tie_word_embeddings = *tie;

  // Sliding-window attention: Mistral sets sliding_window; Qwen2 only when use_sliding_window.
  auto use_sw = f.Bool("use_sliding_window", !qwen2);
  if (!use_sw.ok()) return use_sw.status();
  if (*use_sw && f.Has("sliding_window")) {
    auto sw = f.Int("sliding_window", std::nullopt);
    if (!sw.ok()) return sw.status();
    if (*sw < c.max_position_embeddings) c.sliding_window = *sw;
  }

  auto bos = f.Int("bos_token_id", 1, 0);
  if (!bos.ok()) return bos.status();
  c.bos_token_id = static_cast<int32_t>(*bos);
  auto eos = ParseEos(j, f);
  if (!eos.ok()) return eos.status();
  c.eos_token_ids = *eos;
  for (int32_t id : c.eos_token_ids) {
    if (id < 0 || id >= c.vocab_size) return f.Error("eos_token_id", "is outside the vocabulary");
  }
  if (c.bos_token_id >= c.vocab_size) return f.Error("bos_token_id", "is outside the vocabulary");
  return c;
}

}  // namespace qsl
