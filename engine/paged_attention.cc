// Picks the paged attention build for this CPU. All builds give the same bits (tested), so the
// choice is about speed only.
#include "engine/paged_attention.h"

namespace qsl {

namespace attention {
#define QSL_DECLARE_ATTENTION(isa)                                                          \
  namespace isa {                                                                           \
  void Attend(const AttentionShape& s, const PagedKv& kv, int32_t pos, int32_t count,       \
              const float* q, float* out, int32_t kv_head_begin, int32_t kv_head_end,       \
              AttentionScratch& scratch);                                                   \
  }
QSL_DECLARE_ATTENTION(generic)
QSL_DECLARE_ATTENTION(avx2)
QSL_DECLARE_ATTENTION(avx512)
#undef QSL_DECLARE_ATTENTION
}  // namespace attention

const std::vector<PagedAttentionIsa>& PagedAttentionIsas() {
  static const std::vector<PagedAttentionIsa> isas = [] {
    std::vector<PagedAttentionIsa> v;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) v.push_back({"avx512", &attention::avx512::Attend});
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) {
      v.push_back({"avx2", &attention::avx2::Attend});
    }
    v.push_back({"generic", &attention::generic::Attend});
    return v;
  }();
  return isas;
}

}  // namespace qsl
