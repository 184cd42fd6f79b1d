// Element types of checkpoint and packed-file tensors.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace qsl {

enum class DType : uint8_t { kF32, kF16, kBF16, kF64, kI8, kU8, kI16, kI32, kI64, kBool };

// Bytes per element.
int DTypeSize(DType t);
// Safetensors spelling: "F32", "F16", "BF16", "I8", ...
const char* DTypeName(DType t);
std::optional<DType> DTypeFromName(std::string_view name);

// Converts n elements of a float type (F32, F16, BF16) to fp32. Other types are not floats.
bool IsFloat(DType t);
void ConvertToF32(DType t, const void* src, int64_t n, float* dst);

}  // namespace qsl
