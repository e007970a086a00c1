// Native CPU kernels for the tfjs wasm backend. Every function works in place on typed-array views
// of the wasm heap (no copies): the caller passes views taken after all outputs were allocated.
#include <node_api.h>
#include <cblas.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

// OpenBLAS's own thread control (declared here: not every cblas.h declares it).
extern void openblas_set_num_threads(int num_threads);
extern int openblas_get_num_threads(void);

#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error((env), NULL, "skd-native: N-API call failed: " #call); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static int typed_array(napi_env env, napi_value value, napi_typedarray_type want, void** data, size_t* length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, length, data, &buffer, &offset) != napi_ok) return 0;
  return type == want;
}

static int64_t int_arg(napi_env env, napi_value value) {
  int64_t out = 0;
  napi_get_value_int64(env, value, &out);
  return out;
}

static bool bool_arg(napi_env env, napi_value value) {
  bool out = false;
  napi_get_value_bool(env, value, &out);
  return out;
}

// sgemmBatch(a, b, c, aOffsets, bOffsets, M, N, K, transposeA, transposeB)
// For each batch i: c[i*M*N ..] = op(a[aOffsets[i] ..]) @ op(b[bOffsets[i] ..]), row-major, where
// op(a) is M x K and op(b) is K x N. Broadcasting is expressed by repeated offsets.
static napi_value sgemm_batch(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 10) {
    napi_throw_type_error(env, NULL, "sgemmBatch expects 10 arguments");
    return NULL;
  }
  float *a, *b, *c;
  int32_t *a_off, *b_off;
  size_t a_len, b_len, c_len, batch, b_batch;
  if (!typed_array(env, argv[0], napi_float32_array, (void**)&a, &a_len) ||
      !typed_array(env, argv[1], napi_float32_array, (void**)&b, &b_len) ||
      !typed_array(env, argv[2], napi_float32_array, (void**)&c, &c_len) ||
      !typed_array(env, argv[3], napi_int32_array, (void**)&a_off, &batch) ||
      !typed_array(env, argv[4], napi_int32_array, (void**)&b_off, &b_batch) || batch != b_batch) {
    napi_throw_type_error(env, NULL, "sgemmBatch: a, b, c must be Float32Arrays and the offsets Int32Arrays of one length");
    return NULL;
  }
  const int64_t M = int_arg(env, argv[5]), N = int_arg(env, argv[6]), K = int_arg(env, argv[7]);
  const bool ta = bool_arg(env, argv[8]), tb = bool_arg(env, argv[9]);
  if ((size_t)(batch * M * N) > c_len) {
    napi_throw_range_error(env, NULL, "sgemmBatch: output view too small");
    return NULL;
  }
  for (size_t i = 0; i < batch; i++) {
    if ((size_t)a_off[i] + (size_t)(M * K) > a_len || (size_t)b_off[i] + (size_t)(K * N) > b_len) {
      napi_throw_range_error(env, NULL, "sgemmBatch: an input offset is out of range");
      return NULL;
    }
  }
  if (K == 0) {
    memset(c, 0, sizeof(float) * batch * M * N);
    return NULL;
  }
  for (size_t i = 0; i < batch; i++) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
                1.0f, a + a_off[i], ta ? (int)M : (int)K, b + b_off[i], tb ? (int)K : (int)N, 0.0f, c + i * M * N, (int)N);
  }
  return NULL;
}

// biasActivation(c, bias, rows, cols, biasMode, activation, alpha)
// In place on c (rows x cols): adds bias (mode 0 none, 1 per column, 2 scalar, 3 full) then applies
// activation (0 linear, 1 relu, 2 relu6, 3 sigmoid, 4 leakyrelu with alpha).
static napi_value bias_activation(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *c, *bias = NULL;
  size_t c_len, bias_len = 0;
  if (argc != 7 || !typed_array(env, argv[0], napi_float32_array, (void**)&c, &c_len)) {
    napi_throw_type_error(env, NULL, "biasActivation: c must be a Float32Array");
    return NULL;
  }
  const int64_t rows = int_arg(env, argv[2]), cols = int_arg(env, argv[3]), mode = int_arg(env, argv[4]);
  const int64_t activation = int_arg(env, argv[5]);
  double alpha = 0;
  napi_get_value_double(env, argv[6], &alpha);
  if (mode != 0 && !typed_array(env, argv[1], napi_float32_array, (void**)&bias, &bias_len)) {
    napi_throw_type_error(env, NULL, "biasActivation: bias must be a Float32Array");
    return NULL;
  }
  const size_t n = (size_t)(rows * cols);
  if (n > c_len || (mode == 1 && bias_len < (size_t)cols) || (mode == 3 && bias_len < n) || (mode == 2 && bias_len < 1)) {
    napi_throw_range_error(env, NULL, "biasActivation: a view is too small");
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    float x = c[i];
    if (mode == 1) x += bias[i % cols];
    else if (mode == 2) x += bias[0];
    else if (mode == 3) x += bias[i];
    switch (activation) {
      case 1: x = x > 0 ? x : 0; break;
      case 2: x = x < 0 ? 0 : (x > 6 ? 6 : x); break;
      case 3: x = 1.0f / (1.0f + expf(-x)); break;
      case 4: x = x > 0 ? x : (float)alpha * x; break;
      default: break;
    }
    c[i] = x;
  }
  return NULL;
}

// unsortedSegmentSum(x, ids, out, rows, inner, numSegments): out[ids[r], :] += x[r, :]; ids outside
// [0, numSegments) are dropped, as TensorFlow does. out is zeroed first.
static napi_value unsorted_segment_sum(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x, *out;
  int32_t* ids;
  size_t x_len, ids_len, out_len;
  if (argc != 6 || !typed_array(env, argv[0], napi_float32_array, (void**)&x, &x_len) ||
      !typed_array(env, argv[1], napi_int32_array, (void**)&ids, &ids_len) ||
      !typed_array(env, argv[2], napi_float32_array, (void**)&out, &out_len)) {
    napi_throw_type_error(env, NULL, "unsortedSegmentSum: x, out must be Float32Arrays and ids an Int32Array");
    return NULL;
  }
  const int64_t rows = int_arg(env, argv[3]), inner = int_arg(env, argv[4]), segments = int_arg(env, argv[5]);
  if ((size_t)rows > ids_len || (size_t)(rows * inner) > x_len || (size_t)(segments * inner) > out_len) {
    napi_throw_range_error(env, NULL, "unsortedSegmentSum: a view is too small");
    return NULL;
  }
  memset(out, 0, sizeof(float) * segments * inner);
  for (int64_t r = 0; r < rows; r++) {
    const int32_t s = ids[r];
    if (s < 0 || s >= segments) continue;
    float* dst = out + (int64_t)s * inner;
    const float* src = x + r * inner;
    for (int64_t j = 0; j < inner; j++) dst[j] += src[j];
  }
  return NULL;
}

// sumMiddle(x, out, outer, reduce, inner): x viewed as (outer, reduce, inner); out (outer, inner) is
// the sum over the middle axis. Covers every reduction over a contiguous run of axes (bias and
// LayerNorm gradients reduce leading axes, which tfjs-wasm handles by transposing first).
static napi_value sum_middle(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x, *out;
  size_t x_len, out_len;
  if (argc != 5 || !typed_array(env, argv[0], napi_float32_array, (void**)&x, &x_len) ||
      !typed_array(env, argv[1], napi_float32_array, (void**)&out, &out_len)) {
    napi_throw_type_error(env, NULL, "sumMiddle: x and out must be Float32Arrays");
    return NULL;
  }
  const int64_t outer = int_arg(env, argv[2]), reduce = int_arg(env, argv[3]), inner = int_arg(env, argv[4]);
  if ((size_t)(outer * reduce * inner) > x_len || (size_t)(outer * inner) > out_len) {
    napi_throw_range_error(env, NULL, "sumMiddle: a view is too small");
    return NULL;
  }
  for (int64_t o = 0; o < outer; o++) {
    float* dst = out + o * inner;
    const float* src = x + o * reduce * inner;
    if (inner == 1) {
      float acc = 0;
      for (int64_t r = 0; r < reduce; r++) acc += src[r];
      dst[0] = acc;
      continue;
    }
    memset(dst, 0, sizeof(float) * inner);
    for (int64_t r = 0; r < reduce; r++) {
      const float* row = src + r * inner;
      for (int64_t i = 0; i < inner; i++) dst[i] += row[i];
    }
  }
  return NULL;
}

// exp for x in [-87, 88]: 2^n * p(r) with n = round(x / ln 2) and r = x - n ln 2 split in two parts
// (Cody-Waite), p a degree-6 Taylor polynomial (relative error < 2e-7 on |r| <= ln2 / 2). Only
// arithmetic and bit moves, so GCC vectorises loops over it without -ffast-math (whose finite-math
// assumption could turn a NaN from a diverging run into a plausible number).
static inline float exp_poly(float x) {
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// unary(op, x, out, n): elementwise tanh (op 0) or sigmoid (op 1), vectorised; NaN stays NaN.
static napi_value unary(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *x, *out;
  size_t x_len, out_len;
  if (argc != 4 || !typed_array(env, argv[1], napi_float32_array, (void**)&x, &x_len) ||
      !typed_array(env, argv[2], napi_float32_array, (void**)&out, &out_len)) {
    napi_throw_type_error(env, NULL, "unary: x and out must be Float32Arrays");
    return NULL;
  }
  const int64_t op = int_arg(env, argv[0]), n = int_arg(env, argv[3]);
  if ((size_t)n > x_len || (size_t)n > out_len) {
    napi_throw_range_error(env, NULL, "unary: a view is too small");
    return NULL;
  }
  if (op == 0) {
    for (int64_t i = 0; i < n; i++) {
      // tanh(v) = 1 - 2 / (exp(2v) + 1); clamped so exp stays in range (tanh(+-15) is +-1 in float32).
      const float xi = x[i];
      const float v = xi > 15.0f ? 15.0f : (xi < -15.0f ? -15.0f : xi);
      const float t = 1.0f - 2.0f / (exp_poly(2.0f * v) + 1.0f);
      out[i] = xi != xi ? xi : t;
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      const float xi = x[i];
      const float v = xi > 87.0f ? 87.0f : (xi < -87.0f ? -87.0f : xi);
      const float t = xi < -87.0f ? 0.0f : 1.0f / (1.0f + exp_poly(-v));
      out[i] = xi != xi ? xi : t;
    }
  }
  return NULL;
}

// gatherRows(table, indices, out, count, inner, rows): out[r, :] = table[indices[r], :]. Returns the
// first out-of-range index, or -1 when all are valid (the caller raises the error).
static napi_value gather_rows(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *table, *out;
  int32_t* indices;
  size_t table_len, indices_len, out_len;
  if (argc != 6 || !typed_array(env, argv[0], napi_float32_array, (void**)&table, &table_len) ||
      !typed_array(env, argv[1], napi_int32_array, (void**)&indices, &indices_len) ||
      !typed_array(env, argv[2], napi_float32_array, (void**)&out, &out_len)) {
    napi_throw_type_error(env, NULL, "gatherRows: table and out must be Float32Arrays and indices an Int32Array");
    return NULL;
  }
  const int64_t count = int_arg(env, argv[3]), inner = int_arg(env, argv[4]), rows = int_arg(env, argv[5]);
  if ((size_t)count > indices_len || (size_t)(count * inner) > out_len || (size_t)(rows * inner) > table_len) {
    napi_throw_range_error(env, NULL, "gatherRows: a view is too small");
    return NULL;
  }
  int64_t bad = -1;
  for (int64_t r = 0; r < count; r++) {
    const int32_t k = indices[r];
    if (k < 0 || k >= rows) {
      bad = r;
      break;
    }
    memcpy(out + r * inner, table + (int64_t)k * inner, sizeof(float) * inner);
  }
  napi_value result;
  CHECK(env, napi_create_int64(env, bad, &result));
  return result;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const int64_t n = int_arg(env, argv[0]);
  if (n >= 1) openblas_set_num_threads((int)n);
  napi_value result;
  CHECK(env, napi_create_int32(env, openblas_get_num_threads(), &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sgemmBatch", NULL, sgemm_batch, NULL, NULL, NULL, napi_default, NULL},
      {"biasActivation", NULL, bias_activation, NULL, NULL, NULL, napi_default, NULL},
      {"unsortedSegmentSum", NULL, unsorted_segment_sum, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_default, NULL},
      {"sumMiddle", NULL, sum_middle, NULL, NULL, NULL, napi_default, NULL},
      {"unary", NULL, unary, NULL, NULL, NULL, napi_default, NULL},
      {"gatherRows", NULL, gather_rows, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
