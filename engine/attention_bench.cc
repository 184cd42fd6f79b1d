// qsl-bench-attention (Google Benchmark): the paged attention kernel on the TinyLlama-1.1B head
// geometry (32 query heads, 4 KV heads, head dim 64), one layer: a decode step of N sequences
// at a given context, and a prefill chunk, split over the thread pool as the forward does.
// Reports (query head, key) pairs per second so contexts compare.
#include <algorithm>
#include <random>

#include "benchmark/benchmark.h"
#include "engine/paged_kv_cache.h"

namespace qsl {
namespace {

ModelConfig Shape(int32_t layers = 1) {
  ModelConfig c;
  c.num_layers = layers;
  c.num_heads = 32;
  c.num_kv_heads = 4;
  c.head_dim = 64;
  c.hidden_size = 2048;
  return c;
}

struct Fixture {
  Fixture(KvDtype dtype, int32_t seqs, int32_t ctx, int32_t layers = 1)
      : cache(std::move(
            *PagedKvCache::Create(Shape(layers), dtype, 16, seqs * ((ctx + 15) / 16)))),
        tables(static_cast<size_t>(seqs)) {
    const ModelConfig c = Shape(layers);
    int32_t next = 0;
    for (auto& t : tables) {
      for (int32_t b = 0; b < (ctx + 15) / 16; ++b) t.push_back(next++);
    }
    std::vector<const std::vector<int32_t>*> bound;
    for (auto& t : tables) bound.push_back(&t);
    cache->Bind(bound);
    std::mt19937 rng(1);
    std::normal_distribution<float> d;
    std::vector<float> k(static_cast<size_t>(ctx) * c.kv_dim()), v(k.size());
    for (float& x : k) x = d(rng);
    for (float& x : v) x = d(rng);
    for (int32_t l = 0; l < layers; ++l) {
      for (int32_t s = 0; s < seqs; ++s) cache->Store(l, s, 0, ctx, k.data(), v.data());
    }
    q.resize(static_cast<size_t>(std::max(ctx, seqs)) * c.q_dim());
    for (float& x : q) x = d(rng);
    out.resize(q.size());
  }
  std::unique_ptr<PagedKvCache> cache;
  std::vector<std::vector<int32_t>> tables;
  std::vector<float> q, out;
};

// With 22 layers (TinyLlama's count) the cache outgrows the last-level cache, as in a real
// decode step where each layer's K/V come from DRAM. `between` MiB of other memory read before
// each layer (untimed) stand for the linears a real step runs between two attentions (~25 MB of
// weights per layer at 1.1B), which displace whatever part of the KV the last-level cache kept
// (session 11: 5.7 ms back to back, 7.5 ms with 26 MiB between layers; docs/performance.md).
void BM_Decode(benchmark::State& state) {
  const auto dtype = static_cast<KvDtype>(state.range(0));
  const auto seqs = static_cast<int32_t>(state.range(1));
  const auto ctx = static_cast<int32_t>(state.range(2));
  const auto layers = static_cast<int32_t>(state.range(3));
  const auto between = static_cast<size_t>(state.range(4)) << 20;
  Fixture f(dtype, seqs, ctx, layers);
  std::vector<SeqChunk> chunks;
  for (int32_t s = 0; s < seqs; ++s) chunks.push_back({s, ctx - 1, 1, false});
  std::vector<uint8_t> other(between, 1);
  int64_t sink = 0;
  for (auto _ : state) {
    for (int32_t l = 0; l < layers; ++l) {
      if (between > 0) {
        state.PauseTiming();
        for (size_t i = 0; i < between; i += 64) sink += other[i];
        state.ResumeTiming();
      }
      f.cache->Attend(l, chunks, f.q.data(), f.out.data());
    }
    benchmark::DoNotOptimize(f.out.data());
  }
  benchmark::DoNotOptimize(sink);
  state.SetLabel(KvDtypeName(dtype));
  state.counters["keys/s"] = benchmark::Counter(static_cast<double>(seqs) * ctx * 32 * layers,
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.counters["KV B/s"] =
      benchmark::Counter(static_cast<double>(f.cache->bytes_per_token()) * seqs * ctx,
                         benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Decode)
    ->ArgNames({"dtype", "seqs", "ctx", "layers", "between"})
    ->Args({0, 1, 192, 1, 0})
    ->Args({0, 32, 192, 1, 0})
    ->Args({1, 32, 192, 1, 0})
    ->Args({0, 32, 1024, 1, 0})
    ->Args({0, 32, 192, 22, 0})
    ->Args({1, 32, 192, 22, 0})
    ->Args({0, 32, 192, 22, 26})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_Prefill(benchmark::State& state) {
  const auto len = static_cast<int32_t>(state.range(0));
  Fixture f(KvDtype::kF16, 1, len);
  const std::vector<SeqChunk> chunks = {{0, 0, len, false}};
  for (auto _ : state) {
    f.cache->Attend(0, chunks, f.q.data(), f.out.data());
    benchmark::DoNotOptimize(f.out.data());
  }
  state.counters["keys/s"] = benchmark::Counter(static_cast<double>(len) * (len + 1) / 2 * 32,
                                                benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Prefill)->ArgNames({"len"})->Arg(128)->Arg(512)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace qsl

BENCHMARK_MAIN();
