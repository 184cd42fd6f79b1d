#include "base/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace qsl {
namespace {

// Every index is visited exactly once, whatever the pool size, grain and job count.
TEST(ThreadPoolTest, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 7, 64, 1000}) {
      for (int64_t grain : {1, 3, 64}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.ParallelFor(n, grain, [&](int64_t b, int64_t e) {
          ASSERT_LE(e - b, grain);
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << i;
      }
    }
  }
}

// Ranges are `grain` long until the end nears, then shrink to a 1/(2 * threads) share of what is
// left, down to single items (so that the threads finish together); which thread claims a range
// never changes where the ranges fall.
TEST(ThreadPoolTest, RangesShrinkTowardTheEnd) {
  ThreadPool pool(2);
  constexpr int64_t kN = 1000, kGrain = 100;
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> got;
  pool.ParallelFor(kN, kGrain, [&](int64_t b, int64_t e) {
    std::lock_guard<std::mutex> lock(mu);
    got.emplace_back(b, e);
  });
  std::sort(got.begin(), got.end());
  std::vector<std::pair<int64_t, int64_t>> want;
  for (int64_t b = 0; b < kN;) {
    const int64_t len = std::clamp<int64_t>((kN - b) / 4, 1, kGrain);
    want.emplace_back(b, b + len);
    b += len;
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.front().second - got.front().first, kGrain);
  EXPECT_EQ(got.back().second - got.back().first, 1);
}

// Workers really take part: with a job that waits for a second thread, both must show up.
TEST(ThreadPoolTest, UsesWorkerThreads) {
  ThreadPool pool(2);
  std::mutex mu;
  std::set<std::thread::id> ids;
  std::atomic<int> arrived{0};
  pool.ParallelFor(2, 1, [&](int64_t, int64_t) {
    arrived.fetch_add(1);
    while (arrived.load() < 2) std::this_thread::yield();
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(ids.size(), 2u);
}

// A job started from inside a job runs inline instead of deadlocking, and many short jobs in a
// row (workers spinning, then sleeping between them) all complete.
TEST(ThreadPoolTest, NestedAndRepeatedJobs) {
  ThreadPool pool(3, /*spin_us=*/0);
  std::atomic<int64_t> sum{0};
  pool.ParallelFor(4, 1, [&](int64_t, int64_t) {
    pool.ParallelFor(10, 2, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
  });
  EXPECT_EQ(sum.load(), 40);
  for (int rep = 0; rep < 2000; ++rep) {
    pool.ParallelFor(8, 1, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
  }
  EXPECT_EQ(sum.load(), 40 + 2000 * 8);
}

// Two threads sharing one pool: one gets the workers, the other runs inline; both finish.
TEST(ThreadPoolTest, ConcurrentCallers) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  auto caller = [&] {
    for (int rep = 0; rep < 500; ++rep) {
      pool.ParallelFor(16, 4, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
    }
  };
  std::thread a(caller), b(caller);
  a.join();
  b.join();
  EXPECT_EQ(sum.load(), 2 * 500 * 16);
}

TEST(ThreadPoolTest, DefaultSizeIsSettable) {
  EXPECT_GE(ThreadPool::AvailableCpus(), 1);
  EXPECT_FALSE(ThreadPool::SetDefaultSize(0).ok());
  ASSERT_TRUE(ThreadPool::SetDefaultSize(3).ok());
  EXPECT_EQ(ThreadPool::Default().size(), 3);
  ASSERT_TRUE(ThreadPool::SetDefaultSize(ThreadPool::AvailableCpus()).ok());
}

}  // namespace
}  // namespace qsl
