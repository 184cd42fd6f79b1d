// PagedKvCache: attention through scattered block tables against the dense reference, and the
// property batch invariance rests on: a query's output bits do not depend on chunking.
#include "engine/paged_kv_cache.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "base/half.h"
#include "base/thread_pool.h"
#include "gtest/gtest.h"

namespace qsl {
namespace {

ModelConfig Config(int64_t sliding_window = 0) {
  ModelConfig c;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.hidden_size = 64;
  c.sliding_window = sliding_window;
  return c;
}

struct Data {
  std::vector<float> q, k, v;  // [len, q_dim], [len, kv_dim] x2
};

std::unique_ptr<PagedKvCache> Make(const ModelConfig& c, KvDtype dtype, int32_t block_size,
                                   int32_t blocks) {
  auto cache = PagedKvCache::Create(c, dtype, block_size, blocks);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return std::move(*cache);
}

Data Random(const ModelConfig& c, int32_t len, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  Data x;
  for (auto* buf : {&x.q, &x.k, &x.v}) {
    buf->resize(static_cast<size_t>(len) * (buf == &x.q ? c.q_dim() : c.kv_dim()));
    for (float& f : *buf) f = d(rng);
  }
  return x;
}

// Runs `len` positions through the cache in chunks of `chunk` (store, then attend, as the
// forward does), over a block table of scattered block ids; returns the attention output.
std::vector<float> RunChunked(PagedKvCache& cache, const ModelConfig& c, const Data& x,
                              int32_t len, int32_t chunk, int32_t layer = 1,
                              PagedAttentionFn kernel = ActivePagedAttention().fn) {
  std::vector<int32_t> table;
  for (int32_t b = 0; b * cache.block_size() < len; ++b) table.push_back(cache.num_blocks() - 1 - 2 * b);
  cache.Bind({&table});
  std::vector<float> out(static_cast<size_t>(len) * c.q_dim());
  for (int32_t pos = 0; pos < len; pos += chunk) {
    const int32_t n = std::min(chunk, len - pos);
    cache.Store(layer, 0, pos, n, x.k.data() + pos * c.kv_dim(), x.v.data() + pos * c.kv_dim());
    cache.AttendChunk(kernel, layer, 0, pos, n, x.q.data() + pos * c.q_dim(), out.data() + pos * c.q_dim());
  }
  return out;
}

TEST(PagedKvCache, Fp32MatchesDenseAttention) {
  for (int64_t window : {0, 5}) {
    const ModelConfig c = Config(window);
    const int32_t len = 45;
    const Data x = Random(c, len, 1);
    auto cache = Make(c, KvDtype::kF32, 16, 8);
    const std::vector<float> got = RunChunked(*cache, c, x, len, 7);
    std::vector<float> want(got.size()), scratch;
    AttendDense(AttentionShape::From(c), 0, len, x.q.data(), x.k.data(), x.v.data(), want.data(),
                scratch);
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5) << "window " << window << " i " << i;
  }
}

TEST(PagedKvCache, OutputBitsDoNotDependOnChunking) {
  for (KvDtype dtype : {KvDtype::kF16, KvDtype::kInt8, KvDtype::kF32}) {
    for (int64_t window : {0, 9}) {
      const ModelConfig c = Config(window);
      const int32_t len = 53;
      const Data x = Random(c, len, 2);
      auto cache = Make(c, dtype, 16, 10);
      const std::vector<float> whole = RunChunked(*cache, c, x, len, len);
      for (int32_t chunk : {1, 3, 16, 17}) {
        const std::vector<float> got = RunChunked(*cache, c, x, len, chunk);
        ASSERT_EQ(std::memcmp(got.data(), whole.data(), got.size() * sizeof(float)), 0)
            << KvDtypeName(dtype) << " window " << window << " chunk " << chunk;
      }
    }
  }
}

// A batch of many sequences splits the pool work by sequence (all KV heads per item), a batch
// of one by KV head, and chunks longer than the score budget's query tile run in several
// tiles: none of it may change a bit. Block size 12 (lanes padded) and a sliding window too.
TEST(PagedKvCache, BatchAndHeadSplitDoNotChangeBits) {
  for (int64_t window : {0, 9}) {
    ModelConfig c = Config(window);
    c.num_kv_heads = 4;
    c.num_heads = 8;
    const int32_t seqs = 4 * ThreadPool::Default().size() + 1, len = 41, bs = 12;
    const int32_t per_seq = (len + bs - 1) / bs;
    auto cache = Make(c, KvDtype::kF16, bs, seqs * per_seq);
    std::vector<std::vector<int32_t>> tables(static_cast<size_t>(seqs));
    std::vector<const std::vector<int32_t>*> bound;
    std::vector<Data> data;
    for (int32_t s = 0; s < seqs; ++s) {
      for (int32_t b = 0; b < per_seq; ++b) tables[s].push_back(b * seqs + s);  // interleaved
      bound.push_back(&tables[s]);
      data.push_back(Random(c, len, 100 + s));
    }
    cache->Bind(bound);
    for (int32_t s = 0; s < seqs; ++s) {
      cache->Store(0, s, 0, len, data[s].k.data(), data[s].v.data());
    }
    // Every sequence's last query in one batch, then each alone.
    std::vector<SeqChunk> batch;
    std::vector<float> q;
    for (int32_t s = 0; s < seqs; ++s) {
      batch.push_back({s, len - 1, 1, false});
      q.insert(q.end(), data[s].q.end() - c.q_dim(), data[s].q.end());
    }
    std::vector<float> together(q.size()), alone(q.size());
    cache->Attend(0, batch, q.data(), together.data());
    for (int32_t s = 0; s < seqs; ++s) {
      cache->Attend(0, {batch[s]}, q.data() + s * c.q_dim(), alone.data() + s * c.q_dim());
    }
    ASSERT_EQ(std::memcmp(together.data(), alone.data(), q.size() * sizeof(float)), 0)
        << "window " << window;
    // A whole prompt (several query tiles) against one query at a time, through the batch API.
    std::vector<float> whole(data[0].q.size()), single(c.q_dim());
    cache->Attend(0, {{0, 0, len, false}}, data[0].q.data(), whole.data());
    for (int32_t p = 0; p < len; ++p) {
      cache->Attend(0, {{0, p, 1, false}}, data[0].q.data() + p * c.q_dim(), single.data());
      ASSERT_EQ(std::memcmp(single.data(), whole.data() + p * c.q_dim(), single.size() * 4), 0)
          << "window " << window << " position " << p;
    }
  }
}

TEST(PagedKvCache, EveryIsaBuildGivesTheSameBits) {
  const auto isas = PagedAttentionIsas();
  ASSERT_GE(isas.size(), 1u);
  EXPECT_STREQ(isas.front().name, "generic");
  for (KvDtype dtype : {KvDtype::kF16, KvDtype::kInt8, KvDtype::kF32}) {
    // GQA group of 6 (not a multiple of the 8 heads done together), head_dim 40 (a tail after
    // the 16-lane groups), block size 12 (lanes padded), a sliding window.
    // Calls of 3 queries on block size 16 read K and V in place; calls of 9, and block size 12,
    // go through converted copies.
    ModelConfig c = Config(21);
    c.num_heads = 12;
    c.head_dim = 40;
    const int32_t len = 70;
    const Data x = Random(c, len, 5);
    for (int32_t bs : {12, 16}) {
      for (int32_t chunk : {9, 3}) {
        auto cache = Make(c, dtype, bs, 16);
        const std::vector<float> want =
            RunChunked(*cache, c, x, len, chunk, 0, isas.front().fn);
        for (const auto& isa : isas) {
          const std::vector<float> got = RunChunked(*cache, c, x, len, chunk, 0, isa.fn);
          ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
              << isa.name << " " << KvDtypeName(dtype) << " block size " << bs << " chunk "
              << chunk;
        }
      }
    }
    std::printf("%s: %zu builds agree (best: %s)\n", KvDtypeName(dtype), isas.size(),
                isas.back().name);
  }
}

// The kernel reads blocks of whole lane groups in place for calls of a few queries (decode) and
// converts blocks to fp32 copies otherwise (a block size that is not a multiple of 16, or a
// prompt chunk). With K and V that fp16 holds exactly, every way must give the same bits: fp16
// in place, fp32 in place, fp16 and fp32 through copies. int8 in place must give the bits of
// int8 through copies (each value times its scale on load, as the copy holds it).
TEST(PagedKvCache, InPlaceReadsMatchConvertedCopies) {
  for (int64_t window : {0, 9}) {
    ModelConfig c = Config(window);
    c.num_heads = 12;
    c.head_dim = 40;  // a tail after the 16-lane groups of V
    const int32_t len = 53;
    Data x = Random(c, len, 6);
    for (auto* buf : {&x.k, &x.v}) {
      for (float& f : *buf) f = F16ToF32(F32ToF16(f));
    }
    auto copied = Make(c, KvDtype::kF32, 12, 12);
    const std::vector<float> want = RunChunked(*copied, c, x, len, 5);
    for (KvDtype dtype : {KvDtype::kF16, KvDtype::kF32}) {
      for (int32_t bs : {16, 32, 12}) {
        for (int32_t chunk : {1, 3, 8}) {
          auto cache = Make(c, dtype, bs, 12);
          const std::vector<float> got = RunChunked(*cache, c, x, len, chunk);
          ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
              << KvDtypeName(dtype) << " block size " << bs << " window " << window << " chunk "
              << chunk;
        }
      }
    }
    auto copied_i8 = Make(c, KvDtype::kInt8, 12, 12);  // block size 12: always converted
    const std::vector<float> want_i8 = RunChunked(*copied_i8, c, x, len, 5);
    for (int32_t bs : {16, 32}) {
      for (int32_t chunk : {1, 3, 8}) {
        auto cache = Make(c, KvDtype::kInt8, bs, 12);
        const std::vector<float> got = RunChunked(*cache, c, x, len, chunk);
        ASSERT_EQ(std::memcmp(got.data(), want_i8.data(), got.size() * sizeof(float)), 0)
            << "int8 block size " << bs << " window " << window << " chunk " << chunk;
      }
    }
  }
}

TEST(PagedKvCache, ReducedPrecisionStaysCloseToFp32) {
  const ModelConfig c = Config();
  const int32_t len = 40;
  const Data x = Random(c, len, 3);
  auto f32 = Make(c, KvDtype::kF32, 16, 6), f16 = Make(c, KvDtype::kF16, 16, 6),
       i8 = Make(c, KvDtype::kInt8, 16, 6);
  const auto a = RunChunked(*f32, c, x, len, 4);
  const auto b = RunChunked(*f16, c, x, len, 4);
  const auto d = RunChunked(*i8, c, x, len, 4);
  double max_f16 = 0, max_i8 = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_f16 = std::max(max_f16, std::abs(static_cast<double>(a[i]) - b[i]));
    max_i8 = std::max(max_i8, std::abs(static_cast<double>(a[i]) - d[i]));
  }
  EXPECT_LT(max_f16, 5e-3);
  EXPECT_LT(max_i8, 6e-2);
  EXPECT_GT(max_i8, 0.0);  // int8 really quantizes
}

TEST(PagedKvCache, CopiedBlockAttendsLikeTheOriginal) {
  const ModelConfig c = Config();
  const int32_t len = 20;
  const Data x = Random(c, len, 4);
  auto cache = Make(c, KvDtype::kF16, 16, 4);
  std::vector<int32_t> table = {0, 1};
  cache->Bind({&table});
  cache->Store(0, 0, 0, len, x.k.data(), x.v.data());
  std::vector<float> a(static_cast<size_t>(c.q_dim())), b(a.size());
  cache->AttendChunk(ActivePagedAttention().fn, 0, 0, len - 1, 1, x.q.data() + (len - 1) * c.q_dim(), a.data());
  cache->CopyBlock(1, 3);
  std::vector<int32_t> copy = {0, 3};
  cache->Bind({&copy});
  cache->AttendChunk(ActivePagedAttention().fn, 0, 0, len - 1, 1, x.q.data() + (len - 1) * c.q_dim(), b.data());
  EXPECT_EQ(a, b);
}

// The pool is committed when created: one larger than the machine is an error, not an OOM kill.
TEST(PagedKvCache, PoolBeyondTheMachinesMemoryIsRefused) {
  const ModelConfig c = Config();
  auto cache = PagedKvCache::Create(c, KvDtype::kF16, 16, int32_t{1} << 30);  // 2 TiB
  ASSERT_FALSE(cache.ok());
  EXPECT_EQ(cache.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(cache.status().message().find("KV cache"), std::string::npos) << cache.status();
}

TEST(PagedKvCache, BlockBytesAndDtypeNames) {
  const ModelConfig c = Config();
  // 2 layers x K,V x 16 tokens x 32 values.
  EXPECT_EQ(PagedKvCache::BlockBytes(c, KvDtype::kF16, 16), 2 * 2 * 16 * 32 * 2);
  EXPECT_EQ(PagedKvCache::BlockBytes(c, KvDtype::kInt8, 16), 2 * 2 * 16 * (32 + 2 * 4));
  EXPECT_EQ(*ParseKvDtype("int8"), KvDtype::kInt8);
  EXPECT_FALSE(ParseKvDtype("bf16").ok());
}

}  // namespace
}  // namespace qsl
