#include "base/half.h"

#include <cmath>
#include <cstdint>

#include "gtest/gtest.h"

namespace qsl {
namespace {

TEST(Half, F16RoundTripsEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto v = static_cast<uint16_t>(h);
    const float f = F16ToF32(v);
    if (std::isnan(f)) continue;
    EXPECT_EQ(F32ToF16(f), v) << std::hex << h;
  }
}

TEST(Half, F16KnownValues) {
  EXPECT_EQ(F16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(F16ToF32(0xc000), -2.0f);
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);  // rounds to inf
  EXPECT_EQ(F32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even
}

TEST(Half, Bf16RoundTripsAndRounds) {
  for (uint32_t h = 0; h < 0x10000; h += 7) {
    const float f = Bf16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(F32ToBf16(f), h);
  }
  EXPECT_EQ(F32ToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie to even
}

}  // namespace
}  // namespace qsl
