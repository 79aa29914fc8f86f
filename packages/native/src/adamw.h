// torch.optim.AdamW's update of one parameter in a single pass over float32 buffers.
#pragma once
#include <cstdint>

#include "sgemm.h"

namespace vistune {

struct AdamWArgs {
  int64_t n;
  const float *p, *g, *m, *v;  // parameter, gradient, first and second moments (read)
  float *p_out, *m_out, *v_out;  // results: must not overlap any input or each other
  float beta1, beta2, eps;
  float step_size;    // lr / (1 − β1ᵗ)
  float sqrt_bias2;   // √(1 − β2ᵗ)
  float decay;        // 1 − lr·weight_decay
};

// Runs on up to `threads` threads (2 splits the range in halves; small buffers run inline).
void AdamW(const AdamWArgs& a, Isa isa, int threads);

}  // namespace vistune
