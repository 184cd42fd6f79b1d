// The persistent worker pool behind every multi-threaded kernel (see thread_pool.h).
#include "base/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace qsl {
namespace {

constexpr uint32_t kInsideMask = 0x7fff;
constexpr uint32_t kOpen = 0x8000;
constexpr int kSeqShift = 16;
constexpr int kMaxThreads = static_cast<int>(kInsideMask);

void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until pred() holds or `spin_us` pass; returns whether pred() held.
template <typename Pred>
bool SpinUntil(Pred pred, int spin_us) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
  while (true) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      CpuRelax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return pred();
  }
}

std::mutex default_mu;
std::unique_ptr<ThreadPool>& DefaultSlot() {
  static std::unique_ptr<ThreadPool> pool;
  return pool;
}

}  // namespace

ThreadPool::ThreadPool(int threads, int spin_us) : spin_us_(std::max(0, spin_us)) {
  const int n = std::clamp(threads, 1, kMaxThreads);
  workers_.reserve(n - 1);
  for (int i = 1; i < n; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  state_.fetch_add(1u << kSeqShift, std::memory_order_release);
  state_.notify_all();
  for (auto& w : workers_) w.join();
}

uint32_t ThreadPool::AwaitJob(uint32_t last_seq) {
  const auto ready = [&](uint32_t s) {
    return stop_.load(std::memory_order_acquire) ||
           ((s & kOpen) != 0 && (s >> kSeqShift) != last_seq);
  };
  uint32_t s = state_.load(std::memory_order_acquire);
  SpinUntil([&] { return ready(s = state_.load(std::memory_order_acquire)); }, spin_us_);
  while (!ready(s)) {
    state_.wait(s, std::memory_order_acquire);
    s = state_.load(std::memory_order_acquire);
  }
  return s;
}

void ThreadPool::WorkerLoop() {
  uint32_t last_seq = 0;  // the constructor's sequence number, not a load: a job may already be open
  while (true) {
    uint32_t s = AwaitJob(last_seq);
    if (stop_.load(std::memory_order_acquire)) return;
    // Join only the job we saw open; if it closed (or a new one opened) meanwhile, look again.
    if (!state_.compare_exchange_strong(s, s + 1, std::memory_order_acq_rel)) continue;
    last_seq = s >> kSeqShift;
    RunRanges();
    const uint32_t after = state_.fetch_sub(1, std::memory_order_acq_rel) - 1;
    if ((after & (kOpen | kInsideMask)) == 0) state_.notify_all();  // the caller may sleep
  }
}

void ThreadPool::RunRanges() {
  const int64_t n = job_n_, grain = job_grain_, share = 2 * static_cast<int64_t>(size());
  int64_t begin = next_.load(std::memory_order_relaxed);
  while (begin < n) {
    // Ranges shrink toward the end (each claim takes at most a 1/(2 * threads) share of what is
    // left), so the threads finish nearly together: with whole `grain` ranges to the end, one
    // thread often sat out most of the last range, and a decode step makes ~360 calls (idle
    // thread time per 32-sequence step 16-18 ms -> 6 ms; docs/performance.md, session 9).
    const int64_t len = std::clamp((n - begin) / share, int64_t{1}, grain);
    if (next_.compare_exchange_weak(begin, begin + len, std::memory_order_relaxed)) {
      (*job_fn_)(begin, begin + len);
      begin = next_.load(std::memory_order_relaxed);
    }
  }
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             absl::FunctionRef<void(int64_t, int64_t)> fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (workers_.empty() || n <= grain || busy_.exchange(true, std::memory_order_acquire)) {
    for (int64_t b = 0; b < n; b += grain) fn(b, std::min(b + grain, n));
    return;
  }
  job_fn_ = &fn;
  job_n_ = n;
  job_grain_ = grain;
  next_.store(0, std::memory_order_relaxed);
  const uint32_t seq = (state_.load(std::memory_order_relaxed) >> kSeqShift) + 1;
  state_.store((seq << kSeqShift) | kOpen, std::memory_order_release);
  state_.notify_all();
  RunRanges();
  // Close the job; workers still inside finish their last range, late ones can no longer join.
  uint32_t s = state_.fetch_and(~kOpen, std::memory_order_acq_rel) & ~kOpen;
  if ((s & kInsideMask) != 0) {
    SpinUntil([&] { return ((s = state_.load(std::memory_order_acquire)) & kInsideMask) == 0; },
              spin_us_);
    while ((s & kInsideMask) != 0) {
      state_.wait(s, std::memory_order_acquire);
      s = state_.load(std::memory_order_acquire);
    }
  }
  busy_.store(false, std::memory_order_release);
}

int ThreadPool::AvailableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

ThreadPool& ThreadPool::Default() {
  std::lock_guard<std::mutex> lock(default_mu);
  auto& pool = DefaultSlot();
  if (pool == nullptr) pool = std::make_unique<ThreadPool>(AvailableCpus());
  return *pool;
}

absl::Status ThreadPool::SetDefaultSize(int threads) {
  if (threads < 1 || threads > kMaxThreads) {
    return absl::InvalidArgumentError(
        absl::StrCat("thread count ", threads, " must be between 1 and ", kMaxThreads));
  }
  std::lock_guard<std::mutex> lock(default_mu);
  auto& pool = DefaultSlot();
  if (pool == nullptr || pool->size() != threads) pool = std::make_unique<ThreadPool>(threads);
  return absl::OkStatus();
}

}  // namespace qsl
