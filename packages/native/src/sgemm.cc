// The SGEMM driver: cache-blocked loops over packed panels (sgemm_body.inc), compiled once per instruction set
// with GCC/Clang target attributes so one binary runs anywhere and picks AVX-512 or AVX2+FMA at run time.
#include "sgemm.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vistune {
namespace {

// Rows of op(A) up to which the unpacked dot/axpy path runs (decode steps, one token per sequence).
constexpr int64_t kFewRows = 4;

// Growable, 64-byte-aligned scratch per thread: packed panels of A and B, and op(A) rows for the few-rows path.
class Workspace {
 public:
  float* A(int64_t n) { return Grow(a_, n); }
  float* B(int64_t n) { return Grow(b_, n); }
  float* Few(int64_t n) { return Grow(few_, n); }

 private:
  static float* Grow(std::vector<float>& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n + 16) v.resize(static_cast<size_t>(n + 16));
    const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
    return reinterpret_cast<float*>((p + 63) & ~static_cast<uintptr_t>(63));
  }
  std::vector<float> a_, b_, few_;
};

Workspace& ThreadWorkspace() {
  thread_local Workspace ws;
  return ws;
}

}  // namespace
}  // namespace vistune

// ---- generic C++ (any CPU, any compiler): plain floats, the compiler may vectorise what it can ----
#define ISA_NS generic_impl
#define VEC float
#define VLEN 1
#define VZERO() 0.0f
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VSET1(x) (x)
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VADD(a, b) ((a) + (b))
#define VHSUM(v) (v)
#define MR_ 4
#define NR_ 8
#define KC_ 256
#define MC_ 128
#define NC_ 2048
namespace vistune {
#include "sgemm_body.inc"
}

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define VISTUNE_X86_KERNELS 1
#include <immintrin.h>

// ---- AVX2 + FMA: 6 × 16 tile in 12 ymm accumulators ----
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#endif
namespace vistune {
namespace avx2_impl {
static inline float HSum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
}  // namespace avx2_impl
}  // namespace vistune
#define ISA_NS avx2_impl
#define VEC __m256
#define VLEN 8
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VHSUM(v) HSum256(v)
#define MR_ 6
#define NR_ 16
#define KC_ 256
#define MC_ 120
#define NC_ 2048
namespace vistune {
#include "sgemm_body.inc"
}
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

// ---- AVX-512: 8 × 32 tile in 16 zmm accumulators ----
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's own AVX-512 headers trip this false positive (their "undefined" source vectors).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#endif
namespace vistune {
namespace avx512_impl {
static inline float HSum512(__m512 v) {
  // Fold the upper 256 bits onto the lower (shuffle, not extract: GCC 12's extract trips -Wmaybe-uninitialized).
  const __m512 folded = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));
  const __m256 lo = _mm512_castps512_ps256(folded);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(lo), _mm256_extractf128_ps(lo, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
}  // namespace avx512_impl
}  // namespace vistune
#define ISA_NS avx512_impl
#define VEC __m512
#define VLEN 16
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VHSUM(v) HSum512(v)
#define MR_ 8
#define NR_ 32
#define KC_ 256
#define MC_ 128
#define NC_ 2048
namespace vistune {
#include "sgemm_body.inc"
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#endif

namespace vistune {

Isa BestIsa() {
#ifdef VISTUNE_X86_KERNELS
  __builtin_cpu_init();
  // libgcc/compiler-rt check the OS saves the wide registers (XGETBV) before reporting these.
  if (__builtin_cpu_supports("avx512f")) return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
#endif
  return Isa::kGeneric;
}

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    default:
      return "generic";
  }
}

namespace {

void RunOne(const GemmArgs& g, Isa isa) {
  Workspace& ws = ThreadWorkspace();
#ifdef VISTUNE_X86_KERNELS
  if (isa == Isa::kAvx512) return avx512_impl::Gemm(g, ws);
  if (isa == Isa::kAvx2) return avx2_impl::Gemm(g, ws);
#endif
  generic_impl::Gemm(g, ws);
}

GemmArgs Slice(const GemmArgs& g, const BatchArgs& batch, int64_t s) {
  GemmArgs out = g;
  out.a = g.a + s * batch.stride_a;
  out.b = g.b + s * batch.stride_b;
  out.c = g.c + s * batch.stride_c;
  return out;
}

void RunSlices(const GemmArgs& g, const BatchArgs& batch, int64_t from, int64_t to, Isa isa) {
  for (int64_t s = from; s < to; s++) RunOne(Slice(g, batch, s), isa);
}

// Columns [j0, j1) of every slice: op(B)'s columns and C's columns move, A stays.
GemmArgs Columns(const GemmArgs& g, int64_t j0, int64_t j1) {
  GemmArgs out = g;
  out.n = j1 - j0;
  out.b = g.trans_b ? g.b + j0 * g.ldb : g.b + j0;
  out.c = g.c + j0;
  return out;
}

// Rows [i0, i1): op(A)'s rows and C's rows move, B stays.
GemmArgs Rows(const GemmArgs& g, int64_t i0, int64_t i1) {
  GemmArgs out = g;
  out.m = i1 - i0;
  out.a = g.trans_a ? g.a + i0 : g.a + i0 * g.lda;
  out.c = g.c + i0 * g.ldc;
  return out;
}

// Below this many multiply-adds per call a second thread costs more to start than it saves (~30 µs).
constexpr int64_t kMinThreadedWork = int64_t{1} << 22;

// One long-lived second thread: a thread started per call would also start with empty pack buffers and
// page-fault megabytes of them in on every product. Never destroyed (a static would be torn down under a
// thread still waiting on it at exit).
class Helper {
 public:
  Helper() { std::thread([this] { Loop(); }).detach(); }

  // Runs job on the helper while the caller runs its own half; false (nothing run) when another caller,
  // e.g. a worker_thread, holds the helper.
  bool TryRun(const std::function<void()>& job, const std::function<void()>& own) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
    }
    wake_.notify_one();
    own();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return job_ == nullptr; });
    return true;
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return job_ != nullptr; });
      const std::function<void()>* job = job_;
      lock.unlock();
      (*job)();
      lock.lock();
      job_ = nullptr;
      done_.notify_one();
    }
  }

  std::mutex busy_, mutex_;
  std::condition_variable wake_, done_;
  const std::function<void()>* job_ = nullptr;
};

Helper& TheHelper() {
  static Helper* helper = new Helper();
  return *helper;
}

}  // namespace

bool RunOnHelper(const std::function<void()>& job, const std::function<void()>& own) {
  return TheHelper().TryRun(job, own);
}

void Sgemm(const GemmArgs& g, const BatchArgs& batch, Isa isa, int threads) {
  if (batch.count <= 0 || g.m <= 0 || g.n <= 0) return;
  const int64_t work = batch.count * g.m * g.n * std::max<int64_t>(g.k, 1);
  const auto all = [&] { RunSlices(g, batch, 0, batch.count, isa); };
  if (threads < 2 || work < kMinThreadedWork) return all();
  // Two halves of independent output: whole slices when there are several, else columns (or rows when narrow).
  std::function<void()> first, second;
  if (batch.count >= 2) {
    const int64_t half = batch.count / 2;
    first = [&] { RunSlices(g, batch, 0, half, isa); };
    second = [&] { RunSlices(g, batch, half, batch.count, isa); };
  } else if (g.n >= 64) {
    const int64_t half = (g.n / 2 + 31) / 32 * 32;
    first = [&] { RunOne(Columns(g, 0, half), isa); };
    second = [&] { RunOne(Columns(g, half, g.n), isa); };
  } else {
    const int64_t half = g.m / 2;
    first = [&] { RunOne(Rows(g, 0, half), isa); };
    second = [&] { RunOne(Rows(g, half, g.m), isa); };
  }
  if (!TheHelper().TryRun(second, first)) all();
}

}  // namespace vistune
