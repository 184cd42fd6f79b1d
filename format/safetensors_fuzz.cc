// libFuzzer entry point for the safetensors header parser (scripts/fuzz.sh builds it with clang).
#include <cstddef>
#include <cstdint>

#include "format/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = qsl::SafetensorsFile::ParseHeader(data, size, "fuzz");
  if (r.ok()) {
    for (const auto& [name, t] : *r) {
      if (t.nbytes > 0) {
        volatile uint8_t sink = t.data[t.nbytes - 1];  // must be in bounds (ASan checks)
        (void)sink;
      }
    }
  }
  return 0;
}
