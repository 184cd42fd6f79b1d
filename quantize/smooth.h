// Per-input-channel scales folded into the model (SmoothQuant, AWQ): a linear's input channel j
// is divided by s[j] where it is produced (an RMSNorm weight, or a row of the linear before) and
// the linear's column j is multiplied by s[j], so the fp32 function is unchanged while the
// difficulty moves between activations and weights.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace qsl {

// Input channels that must share one scale. o_proj's input channel h * head_dim + d comes
// from v_proj's output row (h / group) * head_dim + d, so with GQA the heads reading one KV
// head share that row's scale. An empty tie is the identity.
struct ChannelTie {
  std::vector<int32_t> owner;  // [k] -> free channel
  int64_t num_free = 0;

  static ChannelTie Gqa(int64_t heads, int64_t kv_heads, int64_t head_dim);
  bool identity() const { return owner.empty(); }
  // Per free channel: the max (or mean) of its tied channels.
  std::vector<float> Reduce(std::span<const float> per_channel, bool max) const;
  // Per channel: its free channel's value.
  std::vector<float> Expand(std::span<const float> free) const;
};

// SmoothQuant (arXiv:2211.10438, eq. 4): s[j] = act_amax[j]^alpha / w_amax[j]^(1 - alpha),
// computed per free channel (maxima over tied channels) and expanded. Channels whose activation
// or weight statistic is zero keep s = 1.
std::vector<float> SmoothScales(std::span<const float> act_amax, std::span<const float> w_amax,
                                float alpha, const ChannelTie& tie = {});

// Running per-column max |w| of weights [n, k], into amax [k].
void ColumnAbsMax(std::span<const float> w, int64_t k, std::span<float> amax);

// w[:, j] *= s[j] for w [n, k].
void ScaleColumns(std::span<float> w, int64_t k, std::span<const float> s);
// v[j] /= s[j]: an RMSNorm weight or a bias.
void DivideChannels(std::span<float> v, std::span<const float> s);
// w[j, :] /= s[j] for w [n, k] (the producing linear's output rows).
void DivideRows(std::span<float> w, int64_t k, std::span<const float> s);

}  // namespace qsl
