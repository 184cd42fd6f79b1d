#include "format/dtype.h"

#include <cstring>

#include "base/half.h"

namespace qsl {

namespace {
struct DTypeInfo {
  DType type;
  const char* name;
  int size;
};
constexpr DTypeInfo kTypes[] = {
    {DType::kF32, "F32", 4}, {DType::kF16, "F16", 2},  {DType::kBF16, "BF16", 2},
    {DType::kF64, "F64", 8}, {DType::kI8, "I8", 1},    {DType::kU8, "U8", 1},
    {DType::kI16, "I16", 2}, {DType::kI32, "I32", 4},  {DType::kI64, "I64", 8},
    {DType::kBool, "BOOL", 1},
};
}  // namespace

int DTypeSize(DType t) { return kTypes[static_cast<int>(t)].size; }
const char* DTypeName(DType t) { return kTypes[static_cast<int>(t)].name; }

std::optional<DType> DTypeFromName(std::string_view name) {
  for (const auto& info : kTypes) {
    if (name == info.name) return info.type;
  }
  return std::nullopt;
}

bool IsFloat(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

void ConvertToF32(DType t, const void* src, int64_t n, float* dst) {
  const auto* bytes = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = F16ToF32(h);
      }
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = Bf16ToF32(h);
      }
      return;
    default:
      return;
  }
}

}  // namespace qsl
