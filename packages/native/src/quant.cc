// Weight-only int8 products: each weight row is read once and dotted with every activation row while it sits in
// L1 (rows is 1 for a decode step), so the product streams cols·depth bytes instead of 4× that in floats.
#include "quant.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define VISTUNE_X86_QUANT 1
#endif

namespace vistune {
namespace {

void GenericColumns(const Int8ProductArgs& a, int64_t j0, int64_t j1) {
  for (int64_t j = j0; j < j1; j++) {
    const int8_t* w = a.q + j * a.depth;
    for (int64_t r = 0; r < a.rows; r++) {
      const float* x = a.x + r * a.depth;
      float acc = 0;
      for (int64_t i = 0; i < a.depth; i++) acc += x[i] * static_cast<float>(w[i]);
      a.out[r * a.cols + j] = acc * a.scales[j];
    }
  }
}

#ifdef VISTUNE_X86_QUANT
__attribute__((target("avx2,fma"))) void Avx2Columns(const Int8ProductArgs& a, int64_t j0, int64_t j1) {
  const int64_t body = a.depth - a.depth % 16;
  for (int64_t j = j0; j < j1; j++) {
    const int8_t* w = a.q + j * a.depth;
    for (int64_t r = 0; r < a.rows; r++) {
      const float* x = a.x + r * a.depth;
      __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
      for (int64_t i = 0; i < body; i += 16) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i));
        const __m256 w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes));
        const __m256 w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(bytes, 8)));
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), w0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), w1, acc1);
      }
      const __m256 sum8 = _mm256_add_ps(acc0, acc1);
      __m128 sum4 = _mm_add_ps(_mm256_castps256_ps128(sum8), _mm256_extractf128_ps(sum8, 1));
      sum4 = _mm_add_ps(sum4, _mm_movehl_ps(sum4, sum4));
      sum4 = _mm_add_ss(sum4, _mm_movehdup_ps(sum4));
      float acc = _mm_cvtss_f32(sum4);
      for (int64_t i = body; i < a.depth; i++) acc += x[i] * static_cast<float>(w[i]);
      a.out[r * a.cols + j] = acc * a.scales[j];
    }
  }
}
#endif

void Columns(const Int8ProductArgs& a, int64_t j0, int64_t j1, Isa isa) {
#ifdef VISTUNE_X86_QUANT
  // AVX-512 CPUs run the AVX2 loop: the product is bound by memory, not by vector width.
  if (isa != Isa::kGeneric) return Avx2Columns(a, j0, j1);
#endif
  GenericColumns(a, j0, j1);
}

// Below this many weight bytes a second thread costs more to wake than it saves.
constexpr int64_t kThreadedBytes = 1 << 20;

}  // namespace

void Int8Product(const Int8ProductArgs& a, Isa isa, int threads) {
  if (a.rows == 0 || a.cols == 0) return;
  const int64_t half = a.cols / 2;
  if (threads >= 2 && a.cols * a.depth >= kThreadedBytes &&
      RunOnHelper([&] { Columns(a, half, a.cols, isa); }, [&] { Columns(a, 0, half, isa); }))
    return;
  Columns(a, 0, a.cols, isa);
}

}  // namespace vistune
