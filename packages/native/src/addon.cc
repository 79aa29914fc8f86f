// N-API binding: sgemm over Float32Arrays (any backing store, including the wasm heap's SharedArrayBuffer),
// checked against the arrays' lengths before any pointer is touched.
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "sgemm.h"

namespace {

constexpr size_t kSgemmArgs = 14;

napi_value Throw(napi_env env, const std::string& message) {
  napi_throw_range_error(env, "ERR_VISTUNE_NATIVE", ("@vistune/native sgemm: " + message).c_str());
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

napi_value Init(napi_env env, napi_value exports) {
  napi_value fn, best;
  napi_create_function(env, "sgemm", NAPI_AUTO_LENGTH, Sgemm, nullptr, &fn);
  napi_set_named_property(env, exports, "sgemm", fn);
  napi_create_int32(env, static_cast<int32_t>(vistune::BestIsa()), &best);
  napi_set_named_property(env, exports, "bestIsa", best);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
