// The generic build of the host fp32 kernels (flags in engine/CMakeLists.txt).
#define QSL_HOST_OPS_ISA generic
#include "engine/host_ops_impl.h"
