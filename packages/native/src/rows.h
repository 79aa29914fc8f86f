// Row-wise element kernels of a transformer step that tfjs runs as chains of full passes: the rotary embedding
// (HF rotate_half layout) and the column sum of a [rows, D] matrix (a broadcast weight's or bias's gradient).
// Both compute in float64 and round once to float32, as core's JS kernels do, so results are bit for bit theirs.
#pragma once
#include <cstdint>

#include "sgemm.h"

namespace vistune {

struct RotaryArgs {
  int64_t batch, heads, positions, dim;  // x and out are [batch, heads, positions, dim], dim even
  int64_t angle_batches;                 // cos and sin are [angle_batches, 1, positions, dim]: 1 or batch
  const float *x, *cos, *sin;
  float* out;                            // may not overlap x
  double sign;                           // 1: the rotation; −1: its adjoint (the gradient)
};

void Rotary(const RotaryArgs& a, Isa isa);

// out[j] = Σ_r x[r·dim + j], summed in row order.
void ColumnSum(const float* x, int64_t rows, int64_t dim, float* out, Isa isa);

}  // namespace vistune
