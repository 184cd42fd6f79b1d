// The avx2 build of the host fp32 kernels (flags in engine/CMakeLists.txt).
#define QSL_HOST_OPS_ISA avx2
#include "engine/host_ops_impl.h"
