// Picks the paged attention build: the one matching the integer kernels' ISA path (accel/isa.h,
// so QSL_ISA / --isa steer both). All builds give the same bits (tested): the choice is speed.
#include "engine/paged_attention.h"

#include "accel/isa.h"

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

namespace {
PagedAttentionIsa BuildFor(Isa isa) {
  switch (isa) {
    case Isa::kAmx:  // tiles are for the linears; attention runs its AVX-512 build
    case Isa::kAvx512: return {"avx512", &attention::avx512::Attend};
    case Isa::kAvx2: return {"avx2", &attention::avx2::Attend};
    case Isa::kScalar: break;
  }
  return {"generic", &attention::generic::Attend};
}
}  // namespace

std::vector<PagedAttentionIsa> PagedAttentionIsas() {
  std::vector<PagedAttentionIsa> v;
  for (Isa isa : SupportedIsas()) {
    if (isa != Isa::kAmx) v.push_back(BuildFor(isa));  // the avx512 build again
  }
  return v;
}

PagedAttentionIsa ActivePagedAttention() { return BuildFor(ActiveIsa()); }

}  // namespace qsl
