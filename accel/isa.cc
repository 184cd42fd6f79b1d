// CPUID/XGETBV feature detection and the process-wide choice of kernel path.
#include "accel/isa.h"

#include <cpuid.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace qsl {
namespace {

struct CpuFeatures {
  bool avx2 = false;
  bool avx512 = false;            // F + BW + VL + VNNI, what linear_avx512.cc is compiled for
  std::string missing_avx2;       // human-readable list, empty when supported
  std::string missing_avx512;
};

uint64_t ReadXcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

void Require(bool have, const char* name, std::string* missing) {
  if (!have) absl::StrAppend(missing, missing->empty() ? "" : ", ", name);
}

CpuFeatures Detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  bool osxsave = false, ymm_os = false, zmm_os = false, fma = false, f16c = false;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    osxsave = (c & bit_OSXSAVE) != 0;
    fma = (c & bit_FMA) != 0;
    f16c = (c & bit_F16C) != 0;
  }
  if (osxsave) {
    const uint64_t xcr0 = ReadXcr0();
    ymm_os = (xcr0 & 0x6) == 0x6;      // SSE and AVX state
    zmm_os = (xcr0 & 0xe6) == 0xe6;    // plus opmask, ZMM_Hi256, Hi16_ZMM
  }
  unsigned b7 = 0, c7 = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    b7 = b;
    c7 = c;
  }
  Require((b7 & bit_AVX2) != 0, "AVX2", &f.missing_avx2);
  // The engine's AVX2-path fp32 kernels (paged attention) use FMA3 and F16C, which every CPU
  // with AVX2 from Intel (Haswell on) and AMD (Excavator on) also has.
  Require(fma, "FMA", &f.missing_avx2);
  Require(f16c, "F16C", &f.missing_avx2);
  Require(ymm_os, "OS support for YMM state", &f.missing_avx2);
  Require((b7 & bit_AVX512F) != 0, "AVX512F", &f.missing_avx512);
  Require((b7 & bit_AVX512BW) != 0, "AVX512BW", &f.missing_avx512);
  Require((b7 & bit_AVX512VL) != 0, "AVX512VL", &f.missing_avx512);
  Require((c7 & bit_AVX512VNNI) != 0, "AVX512_VNNI", &f.missing_avx512);
  Require(zmm_os, "OS support for ZMM state", &f.missing_avx512);
  f.avx2 = f.missing_avx2.empty();
  f.avx512 = f.missing_avx512.empty();
  return f;
}

const CpuFeatures& Features() {
  static const CpuFeatures f = Detect();
  return f;
}

constexpr int kUnset = -1;
std::atomic<int> active{kUnset};

absl::StatusOr<Isa> Resolve(absl::string_view name) {
  auto isa = ParseIsa(name);
  if (!isa.ok()) return isa.status();
  if (!IsaSupported(*isa)) {
    const std::string& missing =
        *isa == Isa::kAvx2 ? Features().missing_avx2 : Features().missing_avx512;
    return absl::FailedPreconditionError(absl::StrCat("kernel path '", IsaName(*isa),
                                                      "' needs CPU features this machine lacks: ",
                                                      missing));
  }
  return *isa;
}

std::string EnvIsa() {
  const char* env = std::getenv("QSL_ISA");
  return env != nullptr ? env : "";
}

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "unknown";
}

absl::StatusOr<Isa> ParseIsa(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n.empty() || n == "auto") return BestIsa();
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (n == IsaName(isa)) return isa;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown kernel path '", name, "' (auto, scalar, avx2, avx512)"));
}

bool IsaSupported(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return Features().avx2;
    case Isa::kAvx512: return Features().avx512;
  }
  return false;
}

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (IsaSupported(isa)) out.push_back(isa);
  }
  return out;
}

Isa BestIsa() {
  if (Features().avx512) return Isa::kAvx512;
  if (Features().avx2) return Isa::kAvx2;
  return Isa::kScalar;
}

Isa ActiveIsa() {
  int v = active.load(std::memory_order_acquire);
  if (v != kUnset) return static_cast<Isa>(v);
  const std::string env = EnvIsa();
  auto isa = Resolve(env);
  if (!isa.ok()) {
    // No caller to hand a status to: a kernel call cannot fail. Stop with the reason.
    std::fprintf(stderr, "qsl: QSL_ISA=%s: %s\n", env.c_str(),
                 std::string(isa.status().message()).c_str());
    std::exit(2);
  }
  active.compare_exchange_strong(v, static_cast<int>(*isa), std::memory_order_acq_rel);
  return static_cast<Isa>(active.load(std::memory_order_acquire));
}

absl::Status SelectIsa(absl::string_view name) {
  std::string from = std::string(name);
  const bool env = from.empty();
  if (env) from = EnvIsa();
  auto isa = Resolve(from);
  if (!isa.ok()) {
    return env ? absl::Status(isa.status().code(),
                              absl::StrCat("QSL_ISA=", from, ": ", isa.status().message()))
               : isa.status();
  }
  active.store(static_cast<int>(*isa), std::memory_order_release);
  return absl::OkStatus();
}

absl::Status SetIsa(Isa isa) { return SelectIsa(IsaName(isa)); }

}  // namespace qsl
