// The dense maths of the engine: matrix products over the threads (AVX2 when the CPU has it, a scalar
// loop otherwise), RMSNorm, RoPE, SwiGLU.
#pragma once

#include <cstddef>

namespace atb::engine {

// y[t][o] = sum_i x[t][i] * w[o][i] for t < tokens, o < out (w row-major [out][in]), on `threads`.
void matmul(const float* x, const float* w, float* y, int tokens, int in, int out, int threads);

// y[t] = x[t] / rms(x[t]) * weight, eps 1e-5.
void rmsnorm(const float* x, const float* weight, float* y, int tokens, int dim);

// Rotates pairs (2j, 2j+1) of each head of one token's vector by the trained angles of `position`.
void rope(float* vector, int heads, int head_size, const float* cos_row, const float* sin_row);

// a[i] = silu(a[i]) * b[i].
void swiglu(float* a, const float* b, size_t count);

}  // namespace atb::engine
