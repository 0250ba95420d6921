// Marks the codec's primitives that the CUDA kernels compile too, so that a GPU-written row is the
// CPU-written one by construction rather than by a second implementation kept in step.
#pragma once

#if defined(__CUDACC__)
#define TQ_HOST_DEVICE __host__ __device__
#else
#define TQ_HOST_DEVICE
#endif
