// qsl-bench-linear: Google Benchmark of the integer linear kernels. For each ISA path and thread
// count it measures, in the same run, the DRAM read bandwidth and the int8 dot-product peak, then
// GEMV (M=1) and GEMM (M=128) for W8 and W4 at the model shapes, and prints their GB/s (packed
// weight bytes / time) and GOPS (2*M*N*K / time) next to those two ceilings. A summary table in
// Markdown follows the usual output.
//
//   qsl-bench-linear [--threads=1,2] [--isa=avx512,avx2] [--ws_mb=1024] [--scalar]
//                    [--benchmark_* flags]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "accel/isa.h"
#include "accel/linear.h"
#include "accel/linear_isa.h"
#include "base/thread_pool.h"
#include "benchmark/benchmark.h"

namespace qsl {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<int> threads;
  std::vector<Isa> isas;
  int64_t ws_bytes = int64_t{1} << 30;
  bool scalar = false;
};

struct Shape {
  int64_t k, n;
};
constexpr Shape kShapes[] = {{2048, 2048}, {2048, 5632}, {5632, 2048}, {4096, 11008}};

const kernel::Kernels& KernelsOf(Isa isa) {
  return isa == Isa::kAvx512 ? kernel::kAvx512Kernels : kernel::kAvx2Kernels;
}

// A 64-byte aligned byte buffer with its pages touched (so the first timed pass does not pay
// the page faults).
struct Buffer {
  explicit Buffer(int64_t n)
      : bytes(n), data(static_cast<uint8_t*>(std::aligned_alloc(64, (n + 63) / 64 * 64))) {
    std::memset(data.get(), 1, static_cast<size_t>(n));
  }
  int64_t bytes;
  std::unique_ptr<uint8_t, decltype(&std::free)> data{nullptr, &std::free};
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Best of 5 streaming reads of the whole buffer by every pool thread (many small ranges, so all
// threads stay busy to the end), in GB/s.
double MeasureDram(const Buffer& buf, Isa isa) {
  const kernel::Kernels& k = KernelsOf(isa);
  constexpr int64_t kChunk = 1 << 20;
  const int64_t chunks = buf.bytes / kChunk;
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    std::atomic<uint64_t> sink{0};
    const auto t0 = Clock::now();
    ThreadPool::Default().ParallelFor(chunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) sink += k.stream_read(buf.data.get() + c * kChunk, kChunk);
    });
    const double s = Seconds(Clock::now() - t0);
    best = std::max(best, static_cast<double>(chunks * kChunk) / s / 1e9);
    benchmark::DoNotOptimize(sink.load());
  }
  return best;
}

// Best of 3 runs of the register-only dot-product loop on every pool thread, in GOPS
// (2 ops per multiply-accumulate).
double MeasurePeak(Isa isa) {
  const kernel::Kernels& k = KernelsOf(isa);
  constexpr int64_t kIters = 1 << 16;
  const int64_t chunks = 64 * ThreadPool::Default().size();
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    std::atomic<int64_t> macs{0};
    const auto t0 = Clock::now();
    ThreadPool::Default().ParallelFor(chunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) macs += k.dot_peak(kIters);
    });
    const double s = Seconds(Clock::now() - t0);
    best = std::max(best, 2.0 * static_cast<double>(macs.load()) / s / 1e9);
  }
  return best;
}

struct Ceilings {
  double dram_gbs = 0.0, peak_gops = 0.0;
};
std::map<std::pair<Isa, int>, Ceilings> ceilings;

struct Result {
  std::string isa, kind, scheme, shape;
  int threads;
  double us, gbs, gops, dram_pct, peak_pct;
};
std::map<std::string, Result> results;  // by benchmark name; the last (final) run wins

PackedLinear MakeWeights(WeightScheme scheme, Shape s) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> q8(-127, 127), q4(0, 15);
  if (scheme == WeightScheme::kW8) {
    W8Weights w{s.n, s.k, std::vector<int8_t>(s.n * s.k), std::vector<float>(s.n, 0.01f)};
    for (auto& v : w.q) v = static_cast<int8_t>(q8(rng));
    return *PackW8(w, {});
  }
  W4Weights w;
  w.n = s.n;
  w.k = s.k;
  w.group = 128;
  w.q4.resize(s.n * s.k);
  for (auto& v : w.q4) v = static_cast<uint8_t>(q4(rng));
  w.gscale.assign(s.n * w.num_groups(), 8);
  w.gzero.assign(s.n * w.num_groups(), 8);
  w.scale.assign(s.n, 0.01f);
  return *PackW4(w, {});
}

// One benchmark: LinearInt8 on `m` rows. For M=1 the weights rotate through copies filling
// ws_bytes, so every call reads them from DRAM as a decode step does; GEMM reuses one copy.
void RunLinear(benchmark::State& state, Isa isa, int threads, WeightScheme scheme, Shape shape,
               int64_t m, int64_t ws_bytes) {
  if (!SetIsa(isa).ok() || !ThreadPool::SetDefaultSize(threads).ok()) {
    state.SkipWithError("cannot select path or threads");
    return;
  }
  const PackedLinear p = MakeWeights(scheme, shape);
  const int64_t bytes = p.layout.bytes();
  const int64_t copies = m == 1 ? std::max<int64_t>(1, (ws_bytes + bytes - 1) / bytes) : 1;
  Buffer tiles(copies * bytes);
  for (int64_t c = 0; c < copies; ++c) {
    std::memcpy(tiles.data.get() + c * bytes, p.tiles.data(), static_cast<size_t>(bytes));
  }
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> q(-127, 127);
  std::vector<int8_t> a(m * p.layout.k_pad());
  for (auto& v : a) v = static_cast<int8_t>(q(rng));
  const std::vector<float> a_scale(m, 0.02f);
  std::vector<float> y(m * shape.n);
  LinearWeightsView v = View(p);

  int64_t iters = 0, c = 0;
  const auto t0 = Clock::now();
  for (auto _ : state) {
    v.tiles = tiles.data.get() + c * bytes;
    c = c + 1 == copies ? 0 : c + 1;
    LinearInt8(v, a.data(), a_scale.data(), m, y.data(), shape.n);
    benchmark::ClobberMemory();
    ++iters;
  }
  const double s = Seconds(Clock::now() - t0) / static_cast<double>(iters);
  const Ceilings ceil = ceilings[{isa == Isa::kScalar ? BestIsa() : isa, threads}];
  Result r;
  r.isa = IsaName(isa);
  r.kind = m == 1 ? "GEMV" : "GEMM";
  r.scheme = WeightSchemeName(scheme);
  r.shape = absl::StrCat(shape.k, "x", shape.n);
  r.threads = threads;
  r.us = s * 1e6;
  r.gbs = static_cast<double>(bytes) / s / 1e9;
  r.gops = 2.0 * static_cast<double>(m * shape.n * shape.k) / s / 1e9;
  r.dram_pct = 100.0 * r.gbs / ceil.dram_gbs;
  r.peak_pct = isa == Isa::kScalar ? 0.0 : 100.0 * r.gops / ceil.peak_gops;
  state.counters["GB/s"] = r.gbs;
  state.counters["GOPS"] = r.gops;
  state.counters["%DRAM"] = r.dram_pct;
  state.counters["%peak"] = r.peak_pct;
  results[state.name()] = r;
}

void PrintSummary() {
  std::printf("\n| path | threads | op | weights | K x N | us/call | GB/s | GOPS | %% of DRAM BW "
              "| %% of int8 peak |\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& [name, r] : results) {
    std::printf("| %s | %d | %s | %s | %s | %.1f | %.1f | %.1f | %.0f%% | %s |\n", r.isa.c_str(),
                r.threads, r.kind.c_str(), r.scheme.c_str(), r.shape.c_str(), r.us, r.gbs, r.gops,
                r.dram_pct, r.isa == "scalar" ? "-" : absl::StrCat(static_cast<int>(r.peak_pct + 0.5), "%").c_str());
  }
}

bool ParseFlags(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&](const char* flag) -> const char* {
      const std::string prefix = absl::StrCat(flag, "=");
      return arg.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (const char* v = value("--threads")) {
      o->threads.clear();
      for (absl::string_view t : absl::StrSplit(v, ',')) {
        int n;
        if (!absl::SimpleAtoi(t, &n) || n < 1) {
          std::fprintf(stderr, "--threads: '%s' is not a list of positive counts\n", v);
          return false;
        }
        o->threads.push_back(n);
      }
    } else if (const char* v = value("--isa")) {
      o->isas.clear();
      for (absl::string_view t : absl::StrSplit(v, ',')) {
        auto isa = ParseIsa(t);
        if (!isa.ok() || !IsaSupported(*isa) || *isa == Isa::kScalar) {
          std::fprintf(stderr, "--isa: '%s' is not a SIMD path this CPU has (%s)\n",
                       std::string(t).c_str(), isa.ok() ? "unsupported" : "unknown name");
          return false;
        }
        o->isas.push_back(*isa);
      }
    } else if (const char* v = value("--ws_mb")) {
      int64_t mb;
      if (!absl::SimpleAtoi(v, &mb) || mb < 64) {
        std::fprintf(stderr, "--ws_mb: '%s' must be a number of MiB >= 64\n", v);
        return false;
      }
      o->ws_bytes = mb << 20;
    } else if (arg == "--scalar") {
      o->scalar = true;
    } else {
      std::fprintf(stderr, "unknown flag '%s' (--threads, --isa, --ws_mb, --scalar, "
                   "--benchmark_*)\n", argv[i]);
      return false;
    }
  }
  return true;
}

int Main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  Options o;
  o.threads = {1};
  if (ThreadPool::AvailableCpus() > 1) o.threads.push_back(ThreadPool::AvailableCpus());
  for (Isa isa : SupportedIsas()) {
    if (isa != Isa::kScalar) o.isas.push_back(isa);
  }
  if (!ParseFlags(argc, argv, &o)) return 2;
  if (o.isas.empty()) {
    std::fprintf(stderr, "this CPU has no SIMD path to measure\n");
    return 2;
  }

  // The ceilings, measured before the kernels and in the same process.
  {
    Buffer dram(o.ws_bytes);
    for (int t : o.threads) {
      if (!ThreadPool::SetDefaultSize(t).ok()) return 2;
      for (Isa isa : o.isas) {
        Ceilings& c = ceilings[{isa, t}];
        c.dram_gbs = MeasureDram(dram, isa);
        c.peak_gops = MeasurePeak(isa);
        std::printf("ceiling: %-6s threads=%d  DRAM read %.1f GB/s (%lld MiB buffer)  "
                    "int8 dot peak %.1f GOPS\n",
                    IsaName(isa), t, c.dram_gbs, static_cast<long long>(o.ws_bytes >> 20),
                    c.peak_gops);
        benchmark::AddCustomContext(absl::StrCat("dram_gbs/", IsaName(isa), "/t", t),
                                    absl::StrCat(c.dram_gbs));
        benchmark::AddCustomContext(absl::StrCat("peak_gops/", IsaName(isa), "/t", t),
                                    absl::StrCat(c.peak_gops));
      }
    }
  }

  std::vector<Isa> paths = o.isas;
  if (o.scalar) paths.push_back(Isa::kScalar);
  for (Isa isa : paths) {
    for (int t : o.threads) {
      for (WeightScheme scheme : {WeightScheme::kW8, WeightScheme::kW4}) {
        for (int64_t m : {int64_t{1}, int64_t{128}}) {
          if (isa == Isa::kScalar && (m != 1 || t != 1)) continue;  // the reference is slow
          for (Shape s : kShapes) {
            const std::string name = absl::StrCat(m == 1 ? "gemv" : "gemm", "/",
                                                  WeightSchemeName(scheme), "/", s.k, "x", s.n,
                                                  "/", IsaName(isa), "/threads:", t);
            benchmark::RegisterBenchmark(name.c_str(), RunLinear, isa, t, scheme, s, m,
                                         o.ws_bytes)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
          }
        }
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  PrintSummary();
  return 0;
}

}  // namespace
}  // namespace qsl

int main(int argc, char** argv) { return qsl::Main(argc, argv); }
