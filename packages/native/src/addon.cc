// N-API binding: sgemm over Float32Arrays (any backing store, including the wasm heap's SharedArrayBuffer),
// checked against the arrays' lengths before any pointer is touched.
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "adamw.h"
#include "sgemm.h"

namespace {

constexpr size_t kSgemmArgs = 14;

napi_value Throw(napi_env env, const std::string& message, const char* fn = "sgemm") {
  napi_throw_range_error(env, "ERR_VISTUNE_NATIVE", (std::string("@vistune/native ") + fn + ": " + message).c_str());
  return nullptr;
}

bool Float32View(napi_env env, napi_value value, float** data, int64_t* length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return false;
  napi_typedarray_type type;
  size_t count = 0;
  void* ptr = nullptr;
  if (napi_get_typedarray_info(env, value, &type, &count, &ptr, nullptr, nullptr) != napi_ok) return false;
  if (type != napi_float32_array) return false;
  *data = static_cast<float*>(ptr);
  *length = static_cast<int64_t>(count);
  return true;
}

bool Integer(napi_env env, napi_value value, int64_t* out) {
  double d = 0;
  if (napi_get_value_double(env, value, &d) != napi_ok) return false;
  if (!std::isfinite(d) || d < 0 || d != std::floor(d) || d > 9007199254740991.0) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

// Floats a slice spans, and whether `count` slices `stride` apart fit in `length`.
bool Fits(int64_t count, int64_t stride, int64_t slice, int64_t length) {
  if (slice == 0) return true;
  return (count - 1) * stride + slice <= length;
}

// sgemm(a, b, c, m, n, k, transA, transB, count, strideA, strideB, strideC, isa, threads)
napi_value Sgemm(napi_env env, napi_callback_info info) {
  size_t argc = kSgemmArgs;
  napi_value argv[kSgemmArgs];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != kSgemmArgs)
    return Throw(env, "expects 14 arguments (a, b, c, m, n, k, transA, transB, count, strideA, strideB, strideC, isa, threads)");
  float *a = nullptr, *b = nullptr, *c = nullptr;
  int64_t len_a = 0, len_b = 0, len_c = 0;
  if (!Float32View(env, argv[0], &a, &len_a)) return Throw(env, "a must be a Float32Array");
  if (!Float32View(env, argv[1], &b, &len_b)) return Throw(env, "b must be a Float32Array");
  if (!Float32View(env, argv[2], &c, &len_c)) return Throw(env, "c must be a Float32Array");
  const char* names[] = {"m", "n", "k", "transA", "transB", "count", "strideA", "strideB", "strideC", "isa", "threads"};
  int64_t v[11];
  for (int i = 0; i < 11; i++)
    if (!Integer(env, argv[3 + i], &v[i]))
      return Throw(env, std::string(names[i]) + " must be a non-negative integer");
  const int64_t m = v[0], n = v[1], k = v[2], count = v[5];
  const bool trans_a = v[3] != 0, trans_b = v[4] != 0;
  if (v[9] > static_cast<int64_t>(vistune::BestIsa()))
    return Throw(env, "isa " + std::to_string(v[9]) + " is not supported by this CPU");
  if (count == 0 || m == 0 || n == 0) return nullptr;
  if (!Fits(count, v[6], m * k, len_a))
    return Throw(env, "a (" + std::to_string(len_a) + " floats) is too short for its shape and strides");
  if (!Fits(count, v[7], k * n, len_b))
    return Throw(env, "b (" + std::to_string(len_b) + " floats) is too short for its shape and strides");
  if (!Fits(count, v[8], m * n, len_c))
    return Throw(env, "c (" + std::to_string(len_c) + " floats) is too short for its shape and strides");
  const vistune::GemmArgs g{m, n, k, a, trans_a ? m : k, trans_a, b, trans_b ? k : n, trans_b, c, n};
  const vistune::BatchArgs batch{count, v[6], v[7], v[8]};
  vistune::Sgemm(g, batch, static_cast<vistune::Isa>(v[9]), static_cast<int>(v[10] > 64 ? 64 : v[10]));
  return nullptr;
}

constexpr size_t kAdamWArgs = 15;

bool Number(napi_env env, napi_value value, double* out) {
  return napi_get_value_double(env, value, out) == napi_ok && std::isfinite(*out);
}

// adamw(p, g, m, v, pOut, mOut, vOut, beta1, beta2, eps, stepSize, sqrtBias2, decay, isa, threads)
napi_value AdamW(napi_env env, napi_callback_info info) {
  size_t argc = kAdamWArgs;
  napi_value argv[kAdamWArgs];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != kAdamWArgs)
    return Throw(env, "expects 15 arguments (p, g, m, v, pOut, mOut, vOut, beta1, beta2, eps, stepSize, sqrtBias2, decay, isa, threads)", "adamw");
  const char* arrays[] = {"p", "g", "m", "v", "pOut", "mOut", "vOut"};
  float* ptr[7];
  int64_t len[7];
  for (int i = 0; i < 7; i++) {
    if (!Float32View(env, argv[i], &ptr[i], &len[i])) return Throw(env, std::string(arrays[i]) + " must be a Float32Array", "adamw");
    if (len[i] != len[0])
      return Throw(env, std::string(arrays[i]) + " has " + std::to_string(len[i]) + " floats, p has " + std::to_string(len[0]), "adamw");
  }
  for (int o = 4; o < 7; o++)
    for (int i = 0; i < 7; i++)
      if (i != o && len[0] > 0 && ptr[o] < ptr[i] + len[0] && ptr[i] < ptr[o] + len[0])
        return Throw(env, std::string(arrays[o]) + " overlaps " + arrays[i] + ": results need their own buffers", "adamw");
  const char* numbers[] = {"beta1", "beta2", "eps", "stepSize", "sqrtBias2", "decay"};
  double h[6];
  for (int i = 0; i < 6; i++)
    if (!Number(env, argv[7 + i], &h[i])) return Throw(env, std::string(numbers[i]) + " must be a finite number", "adamw");
  int64_t isa = 0, threads = 1;
  if (!Integer(env, argv[13], &isa) || isa > static_cast<int64_t>(vistune::BestIsa()))
    return Throw(env, "isa must be one this CPU supports (0 to " + std::to_string(static_cast<int>(vistune::BestIsa())) + ")", "adamw");
  if (!Integer(env, argv[14], &threads)) return Throw(env, "threads must be a non-negative integer", "adamw");
  const vistune::AdamWArgs a{len[0], ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], ptr[5], ptr[6],
                             static_cast<float>(h[0]), static_cast<float>(h[1]), static_cast<float>(h[2]),
                             static_cast<float>(h[3]), static_cast<float>(h[4]), static_cast<float>(h[5])};
  vistune::AdamW(a, static_cast<vistune::Isa>(isa), static_cast<int>(threads > 64 ? 64 : threads));
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_value fn, adamw, best;
  napi_create_function(env, "sgemm", NAPI_AUTO_LENGTH, Sgemm, nullptr, &fn);
  napi_set_named_property(env, exports, "sgemm", fn);
  napi_create_function(env, "adamw", NAPI_AUTO_LENGTH, AdamW, nullptr, &adamw);
  napi_set_named_property(env, exports, "adamw", adamw);
  napi_create_int32(env, static_cast<int32_t>(vistune::BestIsa()), &best);
  napi_set_named_property(env, exports, "bestIsa", best);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
