// BlockPool: reference counts, the free count, and the prefix cache's keys, hits and eviction.
#include "engine/block_pool.h"

#include <numeric>

#include "gtest/gtest.h"

namespace qsl {
namespace {

std::vector<int32_t> Tokens(int32_t first, int32_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

TEST(BlockPool, AllocatesEveryBlockOnceThenRunsDry) {
  BlockPool pool(4, 16);
  std::vector<int32_t> got;
  for (int i = 0; i < 4; ++i) got.push_back(pool.Allocate());
  EXPECT_EQ(pool.Allocate(), -1);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_EQ(pool.num_used(), 4);
}

TEST(BlockPool, SharedBlockIsFreeOnlyAfterTheLastRelease) {
  BlockPool pool(2, 16);
  const int32_t b = pool.Allocate();
  pool.Ref(b);
  EXPECT_EQ(pool.refcount(b), 2);
  pool.Release(b);
  EXPECT_EQ(pool.num_free(), 1);
  pool.Release(b);
  EXPECT_EQ(pool.num_free(), 2);
}

TEST(BlockPool, LookupFindsRegisteredChainAndTakesReference) {
  BlockPool pool(8, 4);
  const int32_t a = pool.Allocate(), b = pool.Allocate();
  pool.Register(-1, Tokens(0, 4), a);
  pool.Register(a, Tokens(4, 4), b);
  EXPECT_EQ(pool.Lookup(-1, Tokens(0, 4)), a);
  EXPECT_EQ(pool.refcount(a), 2);
  EXPECT_EQ(pool.Lookup(a, Tokens(4, 4)), b);
  EXPECT_EQ(pool.Lookup(-1, Tokens(4, 4)), -1);  // same tokens, wrong parent
  EXPECT_EQ(pool.Lookup(a, Tokens(5, 4)), -1);
  EXPECT_EQ(pool.num_cached(), 2);
}

TEST(BlockPool, ReleasedCachedBlockStaysFindableAndCountsAsFree) {
  BlockPool pool(2, 4);
  const int32_t a = pool.Allocate();
  pool.Register(-1, Tokens(0, 4), a);
  pool.Release(a);
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_EQ(pool.Lookup(-1, Tokens(0, 4)), a);
  EXPECT_EQ(pool.num_free(), 1);
  EXPECT_EQ(pool.refcount(a), 1);
}

TEST(BlockPool, EvictsLeastRecentlyReleasedAndStaleChildrenNeverMatch) {
  BlockPool pool(3, 4);
  const int32_t a = pool.Allocate(), b = pool.Allocate(), c = pool.Allocate();
  pool.Register(-1, Tokens(0, 4), a);
  pool.Register(a, Tokens(4, 4), b);
  pool.Register(-1, Tokens(100, 4), c);
  pool.Release(a);  // released first: evicted first
  pool.Release(c);
  pool.Release(b);
  EXPECT_EQ(pool.Allocate(), a);
  // `a` now holds other tokens: its old child must not be found through it, even if the same
  // parent id is registered again with the old tokens.
  pool.Register(-1, Tokens(0, 4), a);
  EXPECT_EQ(pool.Lookup(a, Tokens(4, 4)), -1);
  EXPECT_EQ(pool.Lookup(-1, Tokens(100, 4)), c);
  EXPECT_EQ(pool.num_cached(), 3);  // a's new key, b's orphaned key, c
  EXPECT_EQ(pool.Allocate(), b);    // b was the only evictable block left
  EXPECT_EQ(pool.num_cached(), 2);
}

TEST(BlockPool, DuplicateContentKeepsTheFirstBlock) {
  BlockPool pool(2, 4);
  const int32_t a = pool.Allocate(), b = pool.Allocate();
  pool.Register(-1, Tokens(0, 4), a);
  pool.Register(-1, Tokens(0, 4), b);
  pool.Release(b);
  EXPECT_EQ(pool.num_cached(), 1);
  EXPECT_EQ(pool.Lookup(-1, Tokens(0, 4)), a);
  EXPECT_EQ(pool.Allocate(), b);  // b was never cached: plainly free
}

}  // namespace
}  // namespace qsl
