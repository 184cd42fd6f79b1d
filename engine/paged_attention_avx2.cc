// The avx2 build of the paged attention kernel (flags in engine/CMakeLists.txt).
#define QSL_ATTENTION_ISA avx2
#include "engine/paged_attention_impl.h"
