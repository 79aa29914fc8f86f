// Weight-only int8 products for inference: a float activation times int8 weight rows with one float scale per
// row. The memory-bound one-token products (the LM head above all) then read a quarter of the bytes.
#pragma once
#include <cstdint>

#include "sgemm.h"

namespace vistune {

struct Int8ProductArgs {
  int64_t rows, cols, depth;  // x is [rows, depth], q is [cols, depth] int8, out is [rows, cols]
  const float* x;
  const int8_t* q;
  const float* scales;  // [cols]
  float* out;           // may not overlap x, q or scales
};

// out[r·cols + j] = scales[j] · Σ_i x[r·depth + i] · q[j·depth + i], summed in float32.
void Int8Product(const Int8ProductArgs& a, Isa isa, int threads);

}  // namespace vistune
