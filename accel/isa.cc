// CPUID/XGETBV feature detection and the process-wide choice of kernel path.
#include "accel/isa.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

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
  bool amx = false;               // avx512 plus AMX-TILE, AMX-INT8 and VBMI, granted by the OS
  std::string missing_avx2;       // human-readable list, empty when supported
  std::string missing_avx512;
  std::string missing_amx;
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
  unsigned b7 = 0, c7 = 0, d7 = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    b7 = b;
    c7 = c;
    d7 = d;
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
  f.missing_amx = f.missing_avx512;
  Require((c7 & bit_AVX512VBMI) != 0, "AVX512_VBMI", &f.missing_amx);
  Require((d7 & bit_AMX_TILE) != 0, "AMX-TILE", &f.missing_amx);
  Require((d7 & bit_AMX_INT8) != 0, "AMX-INT8", &f.missing_amx);
  if (f.missing_amx.empty()) {
    const uint64_t xcr0 = ReadXcr0();
    Require((xcr0 & 0x60000) == 0x60000, "OS support for AMX tile state", &f.missing_amx);
  }
  if (f.missing_amx.empty()) {
    // Linux (5.16 on) enables the 8 KiB tile data state per process on request; the grant is
    // process-wide and permanent, so asking once here covers every thread.
    constexpr long kArchReqXcompPerm = 0x1023;
    constexpr long kXfeatureXtiledata = 18;
    Require(syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0,
            "the kernel's permission for AMX tile data (arch_prctl)", &f.missing_amx);
  }
  f.amx = f.missing_amx.empty();
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
    const std::string& missing = *isa == Isa::kAvx2     ? Features().missing_avx2
                                 : *isa == Isa::kAvx512 ? Features().missing_avx512
                                                        : Features().missing_amx;
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
    case Isa::kAmx: return "amx";
  }
  return "unknown";
}

absl::StatusOr<Isa> ParseIsa(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n.empty() || n == "auto") return BestIsa();
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    if (n == IsaName(isa)) return isa;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown kernel path '", name, "' (auto, scalar, avx2, avx512, amx)"));
}

bool IsaSupported(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return Features().avx2;
    case Isa::kAvx512: return Features().avx512;
    case Isa::kAmx: return Features().amx;
  }
  return false;
}

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    if (IsaSupported(isa)) out.push_back(isa);
  }
  return out;
}

Isa BestIsa() {
  if (Features().amx) return Isa::kAmx;
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
