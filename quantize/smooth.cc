// SmoothQuant scales and the folds shared by SmoothQuant and AWQ.
#include "quantize/smooth.h"

#include <algorithm>
#include <cmath>

namespace qsl {

ChannelTie ChannelTie::Gqa(int64_t heads, int64_t kv_heads, int64_t head_dim) {
  ChannelTie t;
  if (heads == kv_heads) return t;
  const int64_t per_kv = heads / kv_heads;
  t.num_free = kv_heads * head_dim;
  t.owner.resize(static_cast<size_t>(heads * head_dim));
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t d = 0; d < head_dim; ++d) {
      t.owner[h * head_dim + d] = static_cast<int32_t>((h / per_kv) * head_dim + d);
    }
  }
  return t;
}

std::vector<float> ChannelTie::Reduce(std::span<const float> per_channel, bool max) const {
  if (identity()) return {per_channel.begin(), per_channel.end()};
  std::vector<float> out(static_cast<size_t>(num_free), 0.0f);
  std::vector<int> count(static_cast<size_t>(num_free), 0);
  for (size_t j = 0; j < owner.size(); ++j) {
    float& o = out[owner[j]];
    o = max ? std::fmax(o, per_channel[j]) : o + per_channel[j];
    ++count[owner[j]];
  }
  if (!max) {
    for (size_t f = 0; f < out.size(); ++f) out[f] /= static_cast<float>(std::max(1, count[f]));
  }
  return out;
}

std::vector<float> ChannelTie::Expand(std::span<const float> free) const {
  if (identity()) return {free.begin(), free.end()};
  std::vector<float> out(owner.size());
  for (size_t j = 0; j < owner.size(); ++j) out[j] = free[owner[j]];
  return out;
}

std::vector<float> SmoothScales(std::span<const float> act_amax, std::span<const float> w_amax,
                                float alpha, const ChannelTie& tie) {
  const std::vector<float> a = tie.Reduce(act_amax, true), w = tie.Reduce(w_amax, true);
  std::vector<float> s(a.size(), 1.0f);
  for (size_t j = 0; j < s.size(); ++j) {
    if (a[j] > 0.0f && w[j] > 0.0f) {
      s[j] = static_cast<float>(std::pow(static_cast<double>(a[j]), alpha) /
                                std::pow(static_cast<double>(w[j]), 1.0 - alpha));
    }
  }
  return tie.Expand(s);
}

void ColumnAbsMax(std::span<const float> w, int64_t k, std::span<float> amax) {
  for (size_t i = 0; i < w.size(); ++i) {
    float& m = amax[i % static_cast<size_t>(k)];
    m = std::fmax(m, std::fabs(w[i]));
  }
}

void ScaleColumns(std::span<float> w, int64_t k, std::span<const float> s) {
  for (size_t i = 0; i < w.size(); ++i) w[i] *= s[i % static_cast<size_t>(k)];
}

void DivideChannels(std::span<float> v, std::span<const float> s) {
  for (size_t j = 0; j < v.size(); ++j) v[j] /= s[j];
}

void DivideRows(std::span<float> w, int64_t k, std::span<const float> s) {
  for (size_t i = 0; i < w.size(); ++i) w[i] /= s[i / static_cast<size_t>(k)];
}

}  // namespace qsl
