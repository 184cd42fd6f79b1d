// A persistent pool of worker threads with a blocking parallel-for, so that a kernel can split
// one call over every core without creating threads per call (a decode step makes hundreds).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace qsl {

class ThreadPool {
 public:
  // `threads` counts the calling thread, which always works too: a pool of 1 has no workers and
  // runs everything inline. After a job, workers spin for `spin_us` microseconds (the next layer
  // call usually follows within that window and then starts without a futex wake-up), then sleep.
  explicit ThreadPool(int threads, int spin_us = 200);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint ranges of at most `grain` items covering [0, n), spread over
  // the workers and the caller, and returns when all are done. Ranges are claimed in increasing
  // order, so a thread that claims several usually gets neighbours; near the end they shrink
  // (down to one item) so that the threads finish together. A call made while the pool is
  // busy (from another thread, or from inside fn) runs inline on its caller: never a deadlock.
  void ParallelFor(int64_t n, int64_t grain, absl::FunctionRef<void(int64_t, int64_t)> fn);

  // The process-wide pool the kernels use; by default one thread per CPU this process may run
  // on (its affinity mask, which containers and taskset narrow).
  static ThreadPool& Default();
  // Replaces the default pool. Call it at start-up or between jobs, never while another thread
  // is inside Default().ParallelFor.
  static absl::Status SetDefaultSize(int threads);
  static int AvailableCpus();

 private:
  void WorkerLoop();
  // Waits until a job other than `last_seq` is open (or the pool stops); returns the state word.
  uint32_t AwaitJob(uint32_t last_seq);
  void RunRanges();

  // state_: bits 16..31 job sequence number, bit 15 "job open", bits 0..14 workers inside the
  // job. One word, so that joining a job (CAS) and closing it (fetch_and) cannot interleave
  // badly: a worker can only enter an open job, and the caller returns once none is inside.
  std::atomic<uint32_t> state_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> busy_{false};
  std::atomic<int64_t> next_{0};
  const absl::FunctionRef<void(int64_t, int64_t)>* job_fn_ = nullptr;
  int64_t job_n_ = 0, job_grain_ = 1;
  int spin_us_;
  std::vector<std::thread> workers_;
};

}  // namespace qsl
