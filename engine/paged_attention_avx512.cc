// The avx512 build of the paged attention kernel (flags in engine/CMakeLists.txt).
#define QSL_ATTENTION_ISA avx512
#include "engine/paged_attention_impl.h"
