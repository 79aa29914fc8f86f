// The AdamW update as one loop the compiler vectorises, compiled per instruction set (target attributes) like
// the SGEMM, so one binary runs anywhere. Element-wise and memory-bound: 16 bytes read, 12 written per float.
#include "adamw.h"

#include <cmath>
#include <functional>

namespace vistune {
namespace {

// Restrict-qualified parameters (locals are not enough for GCC): without them every store could alias every
// other buffer and the loop stays scalar.
#define VISTUNE_DEFINE_ADAMW(NAME, ATTRIBUTES)                                                             \
  ATTRIBUTES void NAME##Loop(int64_t n, const float* __restrict p, const float* __restrict g,            \
                             const float* __restrict m, const float* __restrict v, float* __restrict p_out, \
                             float* __restrict m_out, float* __restrict v_out, float b1, float b2,          \
                             float eps, float step_size, float inv_bias2, float decay) {                    \
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;                                                            \
    for (int64_t i = 0; i < n; i++) {                                                                      \
      const float gi = g[i];                                                                               \
      const float mi = b1 * m[i] + c1 * gi;                                                                \
      const float vi = b2 * v[i] + c2 * gi * gi;                                                           \
      m_out[i] = mi;                                                                                       \
      v_out[i] = vi;                                                                                       \
      p_out[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_bias2 + eps);                        \
    }                                                                                                      \
  }                                                                                                        \
  ATTRIBUTES void NAME(const AdamWArgs& a) {                                                               \
    NAME##Loop(a.n, a.p, a.g, a.m, a.v, a.p_out, a.m_out, a.v_out, a.beta1, a.beta2, a.eps, a.step_size,   \
               1.0f / a.sqrt_bias2, a.decay);                                                              \
  }

VISTUNE_DEFINE_ADAMW(Generic, )

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define VISTUNE_X86_ADAMW 1
VISTUNE_DEFINE_ADAMW(Avx2, __attribute__((target("avx2,fma"))))
VISTUNE_DEFINE_ADAMW(Avx512, __attribute__((target("avx512f,avx2,fma"))))
#endif

void RunOne(const AdamWArgs& a, Isa isa) {
#ifdef VISTUNE_X86_ADAMW
  if (isa == Isa::kAvx512) return Avx512(a);
  if (isa == Isa::kAvx2) return Avx2(a);
#endif
  Generic(a);
}

AdamWArgs Range(const AdamWArgs& a, int64_t from, int64_t to) {
  AdamWArgs r = a;
  r.n = to - from;
  r.p += from, r.g += from, r.m += from, r.v += from;
  r.p_out += from, r.m_out += from, r.v_out += from;
  return r;
}

// Below this a second thread costs more to wake than it saves.
constexpr int64_t kMinThreadedFloats = int64_t{1} << 16;

}  // namespace

void AdamW(const AdamWArgs& a, Isa isa, int threads) {
  if (a.n <= 0) return;
  if (threads < 2 || a.n < kMinThreadedFloats) return RunOne(a, isa);
  const int64_t half = (a.n / 2 + 15) / 16 * 16;
  const AdamWArgs lo = Range(a, 0, half), hi = Range(a, half, a.n);
  const std::function<void()> first = [&] { RunOne(lo, isa); }, second = [&] { RunOne(hi, isa); };
  if (!RunOnHelper(second, first)) RunOne(a, isa);
}

}  // namespace vistune
