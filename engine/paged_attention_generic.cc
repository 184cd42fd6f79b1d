// The generic build of the paged attention kernel (flags in engine/CMakeLists.txt).
#define QSL_ATTENTION_ISA generic
#include "engine/paged_attention_impl.h"
