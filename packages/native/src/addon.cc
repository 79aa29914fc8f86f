// N-API binding: sgemm over Float32Arrays (any backing store, including the wasm heap's SharedArrayBuffer),
// checked against the arrays' lengths before any pointer is touched.
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "adamw.h"
#include "quant.h"
#include "rows.h"
#include "sgemm.h"

namespace {

constexpr size_t kSgemmArgs = 14;

napi_value Throw(napi_env env, const std::string& message, const char* fn = "sgemm") {
  napi_throw_range_error(env, "ERR_VISTUNE_NATIVE", (std::string("@vistune/native ") + fn + ": " + message).c_str());
  return nullptr;
}

// A typed array's element type, data pointer and element count; false for anything else.
bool TypedArrayData(napi_env env, napi_value value, napi_typedarray_type* type, void** ptr, int64_t* count) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return false;
  size_t n = 0;
  if (napi_get_typedarray_info(env, value, type, &n, ptr, nullptr, nullptr) != napi_ok) return false;
  *count = static_cast<int64_t>(n);
  return true;
}

bool Float32View(napi_env env, napi_value value, float** data, int64_t* length) {
  napi_typedarray_type type;
  void* ptr = nullptr;
  if (!TypedArrayData(env, value, &type, &ptr, length) || type != napi_float32_array) return false;
  *data = static_cast<float*>(ptr);
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

bool IsaArg(napi_env env, napi_value value, int64_t* isa) {
  return Integer(env, value, isa) && *isa <= static_cast<int64_t>(vistune::BestIsa());
}

bool DisjointBytes(const void* a, int64_t bytes_a, const void* b, int64_t bytes_b) {
  const char *ca = static_cast<const char*>(a), *cb = static_cast<const char*>(b);
  return bytes_a == 0 || bytes_b == 0 || ca + bytes_a <= cb || cb + bytes_b <= ca;
}

bool Disjoint(const float* a, int64_t len_a, const float* b, int64_t len_b) {
  return DisjointBytes(a, len_a * 4, b, len_b * 4);
}

constexpr size_t kRotaryArgs = 11;

// rotary(x, cos, sin, out, batch, heads, positions, dim, angleBatches, sign, isa)
napi_value Rotary(napi_env env, napi_callback_info info) {
  size_t argc = kRotaryArgs;
  napi_value argv[kRotaryArgs];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != kRotaryArgs)
    return Throw(env, "expects 11 arguments (x, cos, sin, out, batch, heads, positions, dim, angleBatches, sign, isa)", "rotary");
  const char* arrays[] = {"x", "cos", "sin", "out"};
  float* ptr[4];
  int64_t len[4];
  for (int i = 0; i < 4; i++)
    if (!Float32View(env, argv[i], &ptr[i], &len[i])) return Throw(env, std::string(arrays[i]) + " must be a Float32Array", "rotary");
  const char* names[] = {"batch", "heads", "positions", "dim", "angleBatches"};
  int64_t v[5];
  for (int i = 0; i < 5; i++)
    if (!Integer(env, argv[4 + i], &v[i])) return Throw(env, std::string(names[i]) + " must be a non-negative integer", "rotary");
  double sign = 0;
  if (!Number(env, argv[9], &sign) || (sign != 1 && sign != -1)) return Throw(env, "sign must be 1 or -1", "rotary");
  int64_t isa = 0;
  if (!IsaArg(env, argv[10], &isa)) return Throw(env, "isa must be one this CPU supports", "rotary");
  const int64_t batch = v[0], heads = v[1], positions = v[2], dim = v[3], angle_batches = v[4];
  if (dim % 2 != 0) return Throw(env, "dim must be even (rotate_half splits it in halves)", "rotary");
  if (angle_batches != 1 && angle_batches != batch) return Throw(env, "angleBatches must be 1 or batch", "rotary");
  const int64_t n = batch * heads * positions * dim, angles = angle_batches * positions * dim;
  if (len[0] != n || len[3] != n)
    return Throw(env, "x and out must hold batch·heads·positions·dim = " + std::to_string(n) + " floats", "rotary");
  if (len[1] != angles || len[2] != angles)
    return Throw(env, "cos and sin must hold angleBatches·positions·dim = " + std::to_string(angles) + " floats", "rotary");
  for (int i = 0; i < 3; i++)
    if (!Disjoint(ptr[3], len[3], ptr[i], len[i])) return Throw(env, std::string("out overlaps ") + arrays[i], "rotary");
  vistune::Rotary({batch, heads, positions, dim, angle_batches, ptr[0], ptr[1], ptr[2], ptr[3], sign},
                  static_cast<vistune::Isa>(isa));
  return nullptr;
}

// columnSum(x, out, rows, dim, isa)
napi_value ColumnSum(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 5)
    return Throw(env, "expects 5 arguments (x, out, rows, dim, isa)", "columnSum");
  float *x = nullptr, *out = nullptr;
  int64_t len_x = 0, len_out = 0, rows = 0, dim = 0, isa = 0;
  if (!Float32View(env, argv[0], &x, &len_x)) return Throw(env, "x must be a Float32Array", "columnSum");
  if (!Float32View(env, argv[1], &out, &len_out)) return Throw(env, "out must be a Float32Array", "columnSum");
  if (!Integer(env, argv[2], &rows) || !Integer(env, argv[3], &dim))
    return Throw(env, "rows and dim must be non-negative integers", "columnSum");
  if (!IsaArg(env, argv[4], &isa)) return Throw(env, "isa must be one this CPU supports", "columnSum");
  if (len_x != rows * dim) return Throw(env, "x must hold rows·dim = " + std::to_string(rows * dim) + " floats", "columnSum");
  if (len_out != dim) return Throw(env, "out must hold dim = " + std::to_string(dim) + " floats", "columnSum");
  if (!Disjoint(out, len_out, x, len_x)) return Throw(env, "out overlaps x", "columnSum");
  vistune::ColumnSum(x, rows, dim, out, static_cast<vistune::Isa>(isa));
  return nullptr;
}

// Any typed array's bytes (an Int8Array, or the Int32Array a tfjs int32 tensor packs int8 weights into).
bool BytesView(napi_env env, napi_value value, const int8_t** data, int64_t* bytes) {
  napi_typedarray_type type;
  void* ptr = nullptr;
  int64_t count = 0;
  if (!TypedArrayData(env, value, &type, &ptr, &count)) return false;
  if (type != napi_int8_array && type != napi_int32_array) return false;
  *data = static_cast<const int8_t*>(ptr);
  *bytes = count * (type == napi_int32_array ? 4 : 1);
  return true;
}

// int8Product(x, q, scales, out, rows, cols, depth, isa, threads)
napi_value Int8Product(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 9)
    return Throw(env, "expects 9 arguments (x, q, scales, out, rows, cols, depth, isa, threads)", "int8Product");
  float *x = nullptr, *scales = nullptr, *out = nullptr;
  const int8_t* q = nullptr;
  int64_t len_x = 0, len_scales = 0, len_out = 0, bytes_q = 0;
  if (!Float32View(env, argv[0], &x, &len_x)) return Throw(env, "x must be a Float32Array", "int8Product");
  if (!BytesView(env, argv[1], &q, &bytes_q))
    return Throw(env, "q must be an Int8Array or an Int32Array of packed int8 values", "int8Product");
  if (!Float32View(env, argv[2], &scales, &len_scales)) return Throw(env, "scales must be a Float32Array", "int8Product");
  if (!Float32View(env, argv[3], &out, &len_out)) return Throw(env, "out must be a Float32Array", "int8Product");
  const char* names[] = {"rows", "cols", "depth", "isa", "threads"};
  int64_t v[5];
  for (int i = 0; i < 5; i++)
    if (!Integer(env, argv[4 + i], &v[i]))
      return Throw(env, std::string(names[i]) + " must be a non-negative integer", "int8Product");
  const int64_t rows = v[0], cols = v[1], depth = v[2];
  if (!IsaArg(env, argv[7], &v[3])) return Throw(env, "isa must be one this CPU supports", "int8Product");
  if (len_x != rows * depth) return Throw(env, "x must hold rows·depth = " + std::to_string(rows * depth) + " floats", "int8Product");
  if (bytes_q != cols * depth) return Throw(env, "q must hold cols·depth = " + std::to_string(cols * depth) + " int8 values", "int8Product");
  if (len_scales != cols) return Throw(env, "scales must hold cols = " + std::to_string(cols) + " floats", "int8Product");
  if (len_out != rows * cols) return Throw(env, "out must hold rows·cols = " + std::to_string(rows * cols) + " floats", "int8Product");
  if (!Disjoint(out, len_out, x, len_x) || !Disjoint(out, len_out, scales, len_scales) ||
      !DisjointBytes(out, len_out * 4, q, bytes_q))
    return Throw(env, "out overlaps an input", "int8Product");
  vistune::Int8Product({rows, cols, depth, x, q, scales, out}, static_cast<vistune::Isa>(v[3]),
                       static_cast<int>(v[4] > 64 ? 64 : v[4]));
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_value fn, adamw, best;
  napi_create_function(env, "sgemm", NAPI_AUTO_LENGTH, Sgemm, nullptr, &fn);
  napi_set_named_property(env, exports, "sgemm", fn);
  napi_create_function(env, "adamw", NAPI_AUTO_LENGTH, AdamW, nullptr, &adamw);
  napi_set_named_property(env, exports, "adamw", adamw);
  napi_value rotary, column_sum;
  napi_create_function(env, "rotary", NAPI_AUTO_LENGTH, Rotary, nullptr, &rotary);
  napi_set_named_property(env, exports, "rotary", rotary);
  napi_create_function(env, "columnSum", NAPI_AUTO_LENGTH, ColumnSum, nullptr, &column_sum);
  napi_set_named_property(env, exports, "columnSum", column_sum);
  napi_value int8_product;
  napi_create_function(env, "int8Product", NAPI_AUTO_LENGTH, Int8Product, nullptr, &int8_product);
  napi_set_named_property(env, exports, "int8Product", int8_product);
  napi_create_int32(env, static_cast<int32_t>(vistune::BestIsa()), &best);
  napi_set_named_property(env, exports, "bestIsa", best);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
