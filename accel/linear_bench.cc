// qsl-bench-linear: Google Benchmark of the integer linear kernels. For each ISA path and thread
// count it measures, in the same run, the DRAM read bandwidth and the int8 dot-product peak, then
// GEMV (M=1) and GEMM (M=128) for W8 and W4 at the model shapes, and prints their GB/s (packed
// weight bytes / time) and GOPS (2*M*N*K / time) next to those two ceilings. A summary table in
// Markdown follows the usual output.
//
//   qsl-bench-linear [--threads=1,2] [--isa=avx512,avx2] [--m=1,128] [--ws_mb=1024] [--cold_gemm]
//                    [--scalar]
//                    [--benchmark_* flags]
// --cold_gemm rotates GEMM weights through copies as GEMV does (a batched decode step reads its
// weights from DRAM too); by default a GEMM reuses one copy.
// --m picks the row counts: 1 is the GEMV ("gemv/..."), 128 the GEMM ("gemm/..."), any other M
// a GEMM named "gemmM/..." (e.g. --m=32 for a step of 32 decoding sequences).
// --model=FILE.qsl measures instead every linear of one forward step of that packed model, as
// the engine calls them (Q/K/V and gate/up shared, o and down, then lm_head), on M rows of
// random activations: "step/mM/..." with the step's ms and GOPS, and the GOPS of each kind of
// call (qkv, o, gate_up, down, lm_head). The weights come from DRAM as in a decode step (a 1.1B
// model is far larger than the caches). Its runs vary with the machine's other tenants: compare
// builds with --benchmark_repetitions and interleaved runs.
// Weights and buffers sit on 2 MiB huge pages, as the engine holds them on the CPU; --mmap maps
// the model file in place and leaves the buffers on 4 KiB pages (`qsl serve --mmap`).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <sys/mman.h>
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
#include "format/packed_file.h"

namespace qsl {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<int> threads;
  std::vector<Isa> isas;
  std::vector<int64_t> ms = {1, 128};
  int64_t ws_bytes = int64_t{1} << 30;
  bool scalar = false;
  bool cold_gemm = false;
  bool mmap = false;
  std::string model;
};

std::string OpName(int64_t m) {
  return m == 1 ? "gemv" : m == 128 ? "gemm" : absl::StrCat("gemm", m);
}

struct Shape {
  int64_t k, n;
};
constexpr Shape kShapes[] = {{2048, 2048}, {2048, 5632}, {5632, 2048}, {4096, 11008}};

const kernel::Kernels& KernelsOf(Isa isa) {
  return isa == Isa::kAmx      ? kernel::kAmxKernels
         : isa == Isa::kAvx512 ? kernel::kAvx512Kernels
                               : kernel::kAvx2Kernels;
}

// A byte buffer filled with pseudo-random bytes: that commits its pages before any timing, and
// unlike a constant fill gives a hypervisor no identical pages to merge (a memset buffer read at
// half speed on the shared machine until the host had scanned it). On 2 MiB transparent huge
// pages, as the engine holds a model's weights (base/mapped_file.h), unless --mmap.
bool g_small_pages = false;
struct Buffer {
  static constexpr size_t kAlign = size_t{2} << 20;
  static size_t Rounded(int64_t n) { return (static_cast<size_t>(n) + kAlign - 1) / kAlign * kAlign; }
  explicit Buffer(int64_t n)
      : bytes(n), data(static_cast<uint8_t*>(std::aligned_alloc(kAlign, Rounded(n))), &std::free) {
    if (!g_small_pages) ::madvise(data.get(), Rounded(n), MADV_HUGEPAGE);
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int64_t i = 0; i + 8 <= n; i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::memcpy(data.get() + i, &x, sizeof(x));
    }
  }
  int64_t bytes;
  std::unique_ptr<uint8_t, decltype(&std::free)> data;
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

struct Result {
  std::string isa, kind, scheme, shape;
  int threads;
  double us, gbs, gops;
  double ref;  // GEMV: DRAM read GB/s; GEMM: int8 dot peak GOPS; both measured interleaved
  double pct;  // GB/s or GOPS as a share of ref
};
// Every run of every benchmark, by name; the summary reports the median run of each.
std::map<std::string, std::vector<Result>> results;

// The ceiling each kernel call is compared with, run right after it on the same threads, so that
// both see the same share of a machine other jobs are also using: a streaming read of `bytes`
// at `p` (GEMV: another copy of the same weights, in the same buffer, so that only the access
// differs), or the register-only dot loop doing as many multiply-accumulates as the call (GEMM).
class Reference {
 public:
  explicit Reference(Isa isa) : k_(KernelsOf(isa)) {}

  double StreamSeconds(const uint8_t* p, int64_t bytes) {
    constexpr int64_t kChunk = 1 << 20;
    bytes = bytes / 256 * 256;
    std::atomic<uint64_t> sink{0};
    const auto t0 = Clock::now();
    ThreadPool::Default().ParallelFor((bytes + kChunk - 1) / kChunk, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        sink += k_.stream_read(p + c * kChunk, std::min(kChunk, bytes - c * kChunk));
      }
    });
    const double s = Seconds(Clock::now() - t0);
    benchmark::DoNotOptimize(sink.load());
    return s;
  }

  // Returns {seconds, multiply-accumulates done}.
  std::pair<double, int64_t> PeakSeconds(int64_t macs) {
    const int64_t per_iter = k_.dot_peak(1);
    const int64_t chunks = 8 * ThreadPool::Default().size();
    const int64_t iters = std::max<int64_t>(1, macs / (chunks * per_iter));
    std::atomic<int64_t> done{0};
    const auto t0 = Clock::now();
    ThreadPool::Default().ParallelFor(chunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) done += k_.dot_peak(iters);
    });
    return {Seconds(Clock::now() - t0), done.load()};
  }

 private:
  const kernel::Kernels& k_;
};

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

// One benchmark: LinearInt8 on `m` rows, each call followed by its Reference. For M=1 the
// weights rotate through copies filling ws_bytes, so every call reads them from DRAM as a decode
// step does; GEMM reuses one copy. The reported time is the kernel's alone (manual time).
void RunLinear(benchmark::State& state, const std::string& name, Isa isa, int threads,
               WeightScheme scheme, Shape shape, int64_t m, int64_t ws_bytes, bool cold) {
  if (!SetIsa(isa).ok() || !ThreadPool::SetDefaultSize(threads).ok()) {
    state.SkipWithError("cannot select path or threads");
    return;
  }
  const PackedLinear p = MakeWeights(scheme, shape);
  const int64_t bytes = p.layout.bytes();
  const int64_t copies =
      m == 1 || cold ? std::max<int64_t>(1, (ws_bytes + bytes - 1) / bytes) : 1;
  // Google Benchmark calls this several times per repetition (to size the iteration count):
  // the copies (up to ws_bytes, 1 GiB by default) are made once per weight and kept until the
  // next benchmark needs other ones.
  static std::string tiles_key;
  static std::unique_ptr<Buffer> tiles_buf;
  const std::string key = absl::StrCat(WeightSchemeName(scheme), shape.k, "x", shape.n, "/", copies);
  if (key != tiles_key) {
    tiles_buf.reset();
    tiles_buf = std::make_unique<Buffer>(copies * bytes);
    for (int64_t c = 0; c < copies; ++c) {
      std::memcpy(tiles_buf->data.get() + c * bytes, p.tiles.data(), static_cast<size_t>(bytes));
    }
    tiles_key = key;
  }
  const Buffer& tiles = *tiles_buf;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> q(-127, 127);
  std::vector<int8_t> a(m * p.layout.k_pad());
  for (auto& v : a) v = static_cast<int8_t>(q(rng));
  const std::vector<float> a_scale(m, 0.02f);
  std::vector<float> y(m * shape.n);
  LinearWeightsView v = View(p);
  Reference ref(isa == Isa::kScalar ? BestIsa() : isa);
  const int64_t macs = m * shape.n * shape.k;

  int64_t c = 0, ref_macs = 0;
  double kernel_s = 0.0, ref_s = 0.0;
  for (auto _ : state) {
    v.tiles = tiles.data.get() + c * bytes;
    c = c + 1 == copies ? 0 : c + 1;
    const auto t0 = Clock::now();
    LinearInt8(v, a.data(), a_scale.data(), m, y.data(), shape.n);
    benchmark::ClobberMemory();
    const double s = Seconds(Clock::now() - t0);
    state.SetIterationTime(s);
    kernel_s += s;
    if (m == 1) {
      ref_s += ref.StreamSeconds(tiles.data.get() + (c + copies / 2) % copies * bytes, bytes);
    } else {
      const auto [rs, done] = ref.PeakSeconds(macs);
      ref_s += rs;
      ref_macs += done;
    }
  }
  const double iters = static_cast<double>(state.iterations());
  const double s = kernel_s / iters;
  Result r;
  r.isa = IsaName(isa);
  r.kind = m == 1 ? "GEMV" : absl::StrCat("GEMM M=", m);
  r.scheme = WeightSchemeName(scheme);
  r.shape = absl::StrCat(shape.k, "x", shape.n);
  r.threads = threads;
  r.us = s * 1e6;
  r.gbs = static_cast<double>(bytes) / s / 1e9;
  r.gops = 2.0 * static_cast<double>(macs) / s / 1e9;
  r.ref = m == 1 ? static_cast<double>(bytes) * iters / ref_s / 1e9
                 : 2.0 * static_cast<double>(ref_macs) / ref_s / 1e9;
  r.pct = 100.0 * (m == 1 ? r.gbs : r.gops) / r.ref;
  state.counters["GB/s"] = r.gbs;
  state.counters["GOPS"] = r.gops;
  state.counters[m == 1 ? "DRAM_GB/s" : "peak_GOPS"] = r.ref;
  state.counters[m == 1 ? "%DRAM" : "%peak"] = r.pct;
  results[name].push_back(r);
}

void PrintSummary() {
  std::printf(
      "\n| path | threads | op | weights | K x N | us/call | weight GB/s | GOPS | ceiling "
      "(same run) | of ceiling |\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (auto& [name, runs] : results) {
    // The median of each column over the runs (Google Benchmark's calibration runs included,
    // which --benchmark_repetitions outnumbers): robust to the runs another job disturbed.
    const auto median = [&](double Result::*f) {
      std::vector<double> v;
      for (const Result& r : runs) v.push_back(r.*f);
      std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
      return v[v.size() / 2];
    };
    Result r = runs.front();
    r.us = median(&Result::us);
    r.gbs = median(&Result::gbs);
    r.gops = median(&Result::gops);
    r.ref = median(&Result::ref);
    r.pct = median(&Result::pct);
    std::printf("| %s | %d | %s | %s | %s | %.1f | %.1f | %.1f | %.1f %s | %.0f%% |\n",
                r.isa.c_str(), r.threads, r.kind.c_str(), r.scheme.c_str(), r.shape.c_str(), r.us,
                r.gbs, r.gops, r.ref, r.kind == "GEMV" ? "GB/s DRAM read" : "GOPS int8 peak",
                r.pct);
  }
}

// The linears of one forward step of a packed model, grouped as the engine calls them.
struct StepLinears {
  std::vector<std::vector<LinearWeightsView>> calls;  // each: weights sharing one input
  int64_t macs_per_row = 0;
};

absl::StatusOr<StepLinears> LoadStep(const PackedModel& model) {
  StepLinears step;
  const auto get = [&](const std::string& base) { return model.Linear(base); };
  for (int64_t l = 0; l < model.config().num_layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    for (const auto& group : std::vector<std::vector<std::string>>{
             {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"},
             {"self_attn.o_proj"},
             {"mlp.gate_proj", "mlp.up_proj"},
             {"mlp.down_proj"}}) {
      std::vector<LinearWeightsView> call;
      for (const std::string& name : group) {
        absl::StatusOr<LinearWeightsView> v = get(p + name);
        if (!v.ok()) return v.status();
        call.push_back(*v);
      }
      step.calls.push_back(std::move(call));
    }
  }
  absl::StatusOr<LinearWeightsView> head = get("lm_head");
  if (!head.ok()) return head.status();
  step.calls.push_back({*head});
  for (const auto& call : step.calls) {
    for (const LinearWeightsView& v : call) step.macs_per_row += v.layout.n * v.layout.k;
  }
  return step;
}

// One iteration = every linear of the step on m rows (fused epilogue, as the engine runs them).
void RunStep(benchmark::State& state, const StepLinears* step, Isa isa, int threads, int64_t m) {
  if (!SetIsa(isa).ok() || !ThreadPool::SetDefaultSize(threads).ok()) {
    state.SkipWithError("cannot select path or threads");
    return;
  }
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> q(-127, 127);
  int64_t max_k = 0, max_n = 0;
  for (const auto& call : step->calls) {
    for (const LinearWeightsView& v : call) {
      max_k = std::max(max_k, v.layout.k_pad());
      max_n = std::max(max_n, v.layout.n);
    }
  }
  std::vector<int8_t> a(m * max_k);
  for (auto& v : a) v = static_cast<int8_t>(q(rng));
  const std::vector<float> a_scale(m, 0.02f);
  // Outputs as the forward pass has them: q/k/v; o and down into one buffer; gate/up; logits.
  std::vector<std::vector<float>> ys(7, std::vector<float>(m * max_n));
  double total_s = 0.0;
  // Time and MACs per kind of call (Q/K/V, o, gate/up, down: by position in the layer; lm_head).
  constexpr int kKinds = 5;
  double kind_s[kKinds] = {}, kind_macs[kKinds] = {};
  for (auto _ : state) {
    const auto t0 = Clock::now();
    auto tc = t0;
    for (size_t c = 0; c < step->calls.size(); ++c) {
      const auto& call = step->calls[c];
      const int kind = c + 1 == step->calls.size() ? kKinds - 1 : static_cast<int>(c % 4);
      float* out[3] = {ys[0].data(), ys[1].data(), ys[2].data()};
      if (kind == 1 || kind == 3) out[0] = ys[3].data();
      if (kind == 2) out[0] = ys[4].data(), out[1] = ys[5].data();
      if (kind == kKinds - 1) out[0] = ys[6].data();
      if (call.size() == 1) {
        LinearInt8(call[0], a.data(), a_scale.data(), m, out[0], call[0].layout.n);
      } else {
        LinearInt8Shared(call, a.data(), a_scale.data(), m, absl::MakeSpan(out, call.size()));
      }
      const auto tn = Clock::now();
      kind_s[kind] += Seconds(tn - tc);
      for (const LinearWeightsView& v : call) kind_macs[kind] += double(m) * v.layout.n * v.layout.k;
      tc = tn;
    }
    benchmark::ClobberMemory();
    const double s = Seconds(Clock::now() - t0);
    state.SetIterationTime(s);
    total_s += s;
  }
  const double macs = static_cast<double>(state.iterations()) * m * step->macs_per_row;
  state.counters["GOPS"] = 2.0 * macs / total_s / 1e9;
  const char* names[kKinds] = {"qkv", "o", "gate_up", "down", "lm_head"};
  for (int k = 0; k < kKinds; ++k) {
    state.counters[absl::StrCat(names[k], "_GOPS")] = 2.0 * kind_macs[k] / kind_s[k] / 1e9;
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
    } else if (const char* v = value("--m")) {
      o->ms.clear();
      for (absl::string_view t : absl::StrSplit(v, ',')) {
        int64_t m;
        if (!absl::SimpleAtoi(t, &m) || m < 1 || m > 4096) {
          std::fprintf(stderr, "--m: '%s' is not a list of row counts in [1, 4096]\n", v);
          return false;
        }
        o->ms.push_back(m);
      }
    } else if (const char* v = value("--ws_mb")) {
      int64_t mb;
      if (!absl::SimpleAtoi(v, &mb) || mb < 1) {
        std::fprintf(stderr, "--ws_mb: '%s' must be a positive number of MiB\n", v);
        return false;
      }
      o->ws_bytes = mb << 20;
    } else if (const char* v = value("--model")) {
      o->model = v;
    } else if (arg == "--mmap") {
      o->mmap = true;
    } else if (arg == "--cold_gemm") {
      o->cold_gemm = true;
    } else if (arg == "--scalar") {
      o->scalar = true;
    } else {
      std::fprintf(stderr, "unknown flag '%s' (--threads, --isa, --m, --ws_mb, --cold_gemm, --scalar, "
                   "--model, --mmap, --benchmark_*)\n", argv[i]);
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
  g_small_pages = o.mmap;
  if (o.isas.empty()) {
    std::fprintf(stderr, "this CPU has no SIMD path to measure\n");
    return 2;
  }

  std::unique_ptr<PackedModel> model;
  StepLinears step;
  if (!o.model.empty()) {
    PackedOpenOptions open;
    open.verify_checksums = false;  // a benchmark: the structure checks still run
    open.backing = o.mmap ? MappedFile::Backing::kMapped : MappedFile::Backing::kInMemory;
    absl::StatusOr<std::unique_ptr<PackedModel>> m = PackedModel::Open(o.model, open);
    absl::StatusOr<StepLinears> s =
        m.ok() ? LoadStep(**m) : absl::StatusOr<StepLinears>(m.status());
    if (!s.ok()) {
      std::fprintf(stderr, "--model: %s\n", s.status().ToString().c_str());
      return 2;
    }
    model = std::move(*m);
    step = std::move(*s);
    for (Isa isa : o.isas) {
      for (int t : o.threads) {
        for (int64_t m_rows : o.ms) {
          const std::string name =
              absl::StrCat("step/m", m_rows, "/", IsaName(isa), "/threads:", t);
          benchmark::RegisterBenchmark(name.c_str(), RunStep, &step, isa, t, m_rows)
              ->Unit(benchmark::kMillisecond)
              ->UseManualTime();
        }
      }
    }
  }

  // The ceilings alone, for the record; each benchmark also measures its own, interleaved.
  const Buffer dram(o.ws_bytes);
  for (int t : o.threads) {
    if (!ThreadPool::SetDefaultSize(t).ok()) return 2;
    for (Isa isa : o.isas) {
      const double gbs = MeasureDram(dram, isa), gops = MeasurePeak(isa);
      std::printf("ceiling: %-6s threads=%d  DRAM read %.1f GB/s (%lld MiB buffer)  "
                  "int8 dot peak %.1f GOPS\n",
                  IsaName(isa), t, gbs, static_cast<long long>(o.ws_bytes >> 20), gops);
      benchmark::AddCustomContext(absl::StrCat("dram_gbs/", IsaName(isa), "/t", t),
                                  absl::StrCat(gbs));
      benchmark::AddCustomContext(absl::StrCat("peak_gops/", IsaName(isa), "/t", t),
                                  absl::StrCat(gops));
    }
  }

  if (model != nullptr) {
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  }

  std::vector<Isa> paths = o.isas;
  if (o.scalar) paths.push_back(Isa::kScalar);
  for (Isa isa : paths) {
    for (int t : o.threads) {
      for (WeightScheme scheme : {WeightScheme::kW8, WeightScheme::kW4}) {
        for (int64_t m : o.ms) {
          if (isa == Isa::kScalar && (m != 1 || t != 1)) continue;  // the reference is slow
          for (Shape s : kShapes) {
            const std::string name = absl::StrCat(OpName(m), "/",
                                                  WeightSchemeName(scheme), "/", s.k, "x", s.n,
                                                  "/", IsaName(isa), "/threads:", t);
            benchmark::RegisterBenchmark(name.c_str(), RunLinear, name, isa, t, scheme, s, m,
                                         o.ws_bytes, o.cold_gemm)
                ->Unit(benchmark::kMicrosecond)
                ->UseManualTime();
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
