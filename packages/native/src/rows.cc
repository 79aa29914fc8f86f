// Rotary embedding and column sums, compiled per instruction set (target attributes) like the SGEMM. Products
// of two floats are exact in float64, so FMA contraction cannot change a result: the vectorised loops give the
// JS kernels' bits.
#include "rows.h"

#include <vector>

namespace vistune {
namespace {

#define VISTUNE_DEFINE_ROWS(NAME, ATTRIBUTES)                                                                \
  ATTRIBUTES void NAME##RotaryRow(int64_t half, const float* __restrict x, const float* __restrict c,        \
                                  const float* __restrict s, float* __restrict out, double sign) {           \
    for (int64_t i = 0; i < half; i++) {                                                                     \
      const double x1 = x[i], x2 = x[half + i];                                                              \
      out[i] = static_cast<float>(x1 * c[i] - sign * x2 * s[i]);                                            \
      out[half + i] = static_cast<float>(x2 * c[half + i] + sign * x1 * s[half + i]);                        \
    }                                                                                                        \
  }                                                                                                          \
  ATTRIBUTES void NAME##Rotary(const RotaryArgs& a) {                                                        \
    const int64_t half = a.dim / 2;                                                                          \
    const int64_t per_angle_batch = a.angle_batches == 1 ? 0 : a.positions * a.dim;                          \
    for (int64_t b = 0; b < a.batch; b++)                                                                    \
      for (int64_t h = 0; h < a.heads; h++)                                                                  \
        for (int64_t t = 0; t < a.positions; t++) {                                                          \
          const int64_t o = ((b * a.heads + h) * a.positions + t) * a.dim;                                   \
          const int64_t g = b * per_angle_batch + t * a.dim;                                                 \
          NAME##RotaryRow(half, a.x + o, a.cos + g, a.sin + g, a.out + o, a.sign);                           \
        }                                                                                                    \
  }                                                                                                          \
  ATTRIBUTES void NAME##AddRow(int64_t dim, const float* __restrict x, double* __restrict acc) {            \
    for (int64_t j = 0; j < dim; j++) acc[j] += x[j];                                                        \
  }                                                                                                          \
  ATTRIBUTES void NAME##ColumnSum(const float* x, int64_t rows, int64_t dim, float* out) {                   \
    std::vector<double> acc(static_cast<size_t>(dim), 0.0);                                                  \
    for (int64_t r = 0; r < rows; r++) NAME##AddRow(dim, x + r * dim, acc.data());                          \
    for (int64_t j = 0; j < dim; j++) out[j] = static_cast<float>(acc[static_cast<size_t>(j)]);              \
  }

VISTUNE_DEFINE_ROWS(Generic, )

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define VISTUNE_X86_ROWS 1
VISTUNE_DEFINE_ROWS(Avx2, __attribute__((target("avx2,fma"))))
VISTUNE_DEFINE_ROWS(Avx512, __attribute__((target("avx512f,avx2,fma"))))
#endif

}  // namespace

void Rotary(const RotaryArgs& a, Isa isa) {
#ifdef VISTUNE_X86_ROWS
  if (isa == Isa::kAvx512) return Avx512Rotary(a);
  if (isa == Isa::kAvx2) return Avx2Rotary(a);
#endif
  GenericRotary(a);
}

void ColumnSum(const float* x, int64_t rows, int64_t dim, float* out, Isa isa) {
#ifdef VISTUNE_X86_ROWS
  if (isa == Isa::kAvx512) return Avx512ColumnSum(x, rows, dim, out);
  if (isa == Isa::kAvx2) return Avx2ColumnSum(x, rows, dim, out);
#endif
  GenericColumnSum(x, rows, dim, out);
}

}  // namespace vistune
