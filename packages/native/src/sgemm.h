// Single-precision GEMM for vistune's tfjs kernels: row-major C = op(A)·op(B), batched by strides.
#pragma once
#include <cstdint>
#include <functional>

namespace vistune {

enum class Isa : int { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

struct GemmArgs {
  int64_t m, n, k;
  const float* a;  // op(A) is m × k; A is stored k × m when trans_a
  int64_t lda;     // floats between A's stored rows
  bool trans_a;
  const float* b;  // op(B) is k × n; B is stored n × k when trans_b
  int64_t ldb;
  bool trans_b;
  float* c;  // m × n, overwritten
  int64_t ldc;
};

struct BatchArgs {
  int64_t count;  // slices
  int64_t stride_a, stride_b, stride_c;  // floats between slices; 0 repeats a slice (broadcast)
};

// The best instruction set this CPU (and OS) supports.
Isa BestIsa();
const char* IsaName(Isa isa);

// Runs count products on up to `threads` threads (2 is what the split is built for; 1 runs inline).
void Sgemm(const GemmArgs& g, const BatchArgs& batch, Isa isa, int threads);

// Runs job on the one long-lived helper thread while the caller runs own; false (nothing run) when another
// caller holds the helper.
bool RunOnHelper(const std::function<void()>& job, const std::function<void()>& own);

}  // namespace vistune
