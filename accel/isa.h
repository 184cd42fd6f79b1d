// Which instruction-set path the integer kernels run: detected from CPUID at run time (so one
// binary runs on any x86-64), or forced with QSL_ISA / `--isa` for tests and comparisons.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qsl {

enum class Isa {
  kScalar,  // the plain reference (linear_scalar.cc), single-threaded
  kAvx2,    // AVX2: vpmaddubsw / vpmaddwd with the sign trick (linear_avx2.cc)
  kAvx512,  // AVX-512 F/BW/VL + VNNI: vpdpbusd (linear_avx512.cc)
  kAmx,     // kAvx512 plus AMX-INT8 tiles for matmuls of many rows (linear_avx512.cc); every
            // other kernel (and GEMV) runs its AVX-512 code
};

// "scalar", "avx2", "avx512", "amx".
const char* IsaName(Isa isa);
// Parses a path name; "auto" (or "") is the best path this CPU has.
absl::StatusOr<Isa> ParseIsa(absl::string_view name);

// Whether this CPU and OS can run a path (CPUID feature bits and the XCR0 register state).
bool IsaSupported(Isa isa);
// Every path this CPU runs, scalar first.
std::vector<Isa> SupportedIsas();
Isa BestIsa();

// The path every kernel call takes. On first use it is resolved from QSL_ISA (unset = auto);
// a bad or unsupported QSL_ISA then stops the process with a message naming the problem, so
// programs should call SelectIsa at start-up to report it as a normal error instead.
Isa ActiveIsa();

// Forces a path by name (a `--isa` flag; "" reads QSL_ISA, unset or "auto" = best). Naming a
// path this CPU lacks is an error that says which features are missing.
absl::Status SelectIsa(absl::string_view name);
absl::Status SetIsa(Isa isa);

}  // namespace qsl
