// Elementwise kernels: bias + activation after a matmul, tanh and sigmoid, and GELU (tanh form,
// GPT-2's "gelu_new") with its derivative. Vectorised loops, split across the pool when large.
#include "common.h"

#define GELU_C 0.7978845608028654f  // sqrt(2 / pi)
#define GELU_A 0.044715f

typedef struct {
  float* c;
  const float* bias;
  int64_t cols, mode, activation;
  float alpha;
} bias_ctx;

static void bias_rows(void* p, int64_t from, int64_t to) {
  const bias_ctx* k = p;
  for (int64_t r = from; r < to; r++) {
    float* row = k->c + r * k->cols;
    for (int64_t j = 0; j < k->cols; j++) {
      float x = row[j];
      if (k->mode == 1) x += k->bias[j];
      else if (k->mode == 2) x += k->bias[0];
      else if (k->mode == 3) x += k->bias[r * k->cols + j];
      switch (k->activation) {
        case 1: x = x > 0 ? x : 0; break;
        case 2: x = x < 0 ? 0 : (x > 6 ? 6 : x); break;
        case 3: x = 1.0f / (1.0f + skd_exp(-x)); break;
        case 4: x = x > 0 ? x : k->alpha * x; break;
        default: break;
      }
      row[j] = x;
    }
  }
}

// biasActivation(c, bias, rows, cols, biasMode, activation, alpha)
// In place on c (rows x cols): adds bias (mode 0 none, 1 per column, 2 scalar, 3 full), then the
// activation (0 linear, 1 relu, 2 relu6, 3 sigmoid, 4 leakyrelu with alpha).
napi_value skd_napi_bias_activation(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "biasActivation", 7);
  const int64_t rows = skd_int(&a, 2), cols = skd_int(&a, 3), mode = skd_int(&a, 4), activation = skd_int(&a, 5);
  const float alpha = (float)skd_num(&a, 6);
  if (rows < 0 || cols < 0 || mode < 0 || mode > 3) skd_fail(&a, "bad rows %lld, cols %lld or bias mode %lld", (long long)rows, (long long)cols, (long long)mode);
  const size_t n = (size_t)(rows * cols);
  bias_ctx k = {skd_f32(&a, 0, n), NULL, cols, mode, activation, alpha};
  k.bias = mode == 0 ? NULL : skd_f32(&a, 1, mode == 1 ? (size_t)cols : mode == 2 ? 1 : n);
  if (!skd_args_ok(&a)) return NULL;
  skd_for(rows, (int64_t)n >= SKD_PARALLEL_ELEMENTS, bias_rows, &k);
  return NULL;
}

typedef struct {
  const float* x;
  const float* dy;
  float* out;
} unary_ctx;

static void tanh_range(void* p, int64_t from, int64_t to) {
  const unary_ctx* k = p;
  for (int64_t i = from; i < to; i++) k->out[i] = skd_tanh(k->x[i]);
}

static void sigmoid_range(void* p, int64_t from, int64_t to) {
  const unary_ctx* k = p;
  for (int64_t i = from; i < to; i++) {
    const float xi = k->x[i];
    const float v = xi > 87.0f ? 87.0f : (xi < -87.0f ? -87.0f : xi);
    const float t = xi < -87.0f ? 0.0f : 1.0f / (1.0f + skd_exp(-v));
    k->out[i] = xi != xi ? xi : t;
  }
}

static void square_range(void* p, int64_t from, int64_t to) {
  const unary_ctx* k = p;
  for (int64_t i = from; i < to; i++) k->out[i] = k->x[i] * k->x[i];
}

// unary(op, x, out, n): elementwise tanh (op 0), sigmoid (op 1) or square (op 2); NaN stays NaN.
napi_value skd_napi_unary(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "unary", 4);
  const int64_t op = skd_int(&a, 0), n = skd_int(&a, 3);
  if (n < 0 || op < 0 || op > 2) skd_fail(&a, "bad op %lld or length %lld", (long long)op, (long long)n);
  unary_ctx k = {skd_f32(&a, 1, (size_t)n), NULL, skd_f32(&a, 2, (size_t)n)};
  if (!skd_args_ok(&a)) return NULL;
  skd_for(n, n >= SKD_PARALLEL_ELEMENTS, op == 0 ? tanh_range : op == 1 ? sigmoid_range : square_range, &k);
  return NULL;
}

static void gelu_range(void* p, int64_t from, int64_t to) {
  const unary_ctx* k = p;
  const float* x = k->x;
  float* out = k->out;
#pragma GCC ivdep  // in place (out == x) is fine: each element reads only itself
  for (int64_t i = from; i < to; i++) {
    const float v = x[i];
    out[i] = 0.5f * v * (1.0f + skd_tanh(GELU_C * (v + GELU_A * v * v * v)));
  }
}

void skd_gelu_rows(const float* x, float* out, int64_t n) {
  unary_ctx k = {x, NULL, out};
  skd_for(n, n >= SKD_PARALLEL_ELEMENTS, gelu_range, &k);
}

// gelu(x, out, n): 0.5 x (1 + tanh(c (x + a x^3))).
napi_value skd_napi_gelu(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "gelu", 3);
  const int64_t n = skd_int(&a, 2);
  if (n < 0) skd_fail(&a, "negative length");
  const float* x = skd_f32(&a, 0, (size_t)n);
  float* out = skd_f32(&a, 1, (size_t)n);
  if (!skd_args_ok(&a)) return NULL;
  skd_gelu_rows(x, out, n);
  return NULL;
}

static void gelu_grad_range(void* p, int64_t from, int64_t to) {
  const unary_ctx* k = p;
  for (int64_t i = from; i < to; i++) {
    const float v = k->x[i];
    const float t = skd_tanh(GELU_C * (v + GELU_A * v * v * v));
    const float slope = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * GELU_C * (1.0f + 3.0f * GELU_A * v * v);
    k->out[i] = k->dy[i] * slope;
  }
}

// geluGrad(dy, x, dx, n): dy * d/dx gelu(x) = dy (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)).
napi_value skd_napi_gelu_grad(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "geluGrad", 4);
  const int64_t n = skd_int(&a, 3);
  if (n < 0) skd_fail(&a, "negative length");
  unary_ctx k = {skd_f32(&a, 1, (size_t)n), skd_f32(&a, 0, (size_t)n), skd_f32(&a, 2, (size_t)n)};
  if (!skd_args_ok(&a)) return NULL;
  skd_for(n, n >= SKD_PARALLEL_ELEMENTS, gelu_grad_range, &k);
  return NULL;
}

// ---- the storage-bound kernels of the `native` backend (tfjs-backend-cpu's are plain JS loops) --

typedef struct {
  const float *a, *b;
  float* out;
} add_ctx;

static void add_range(void* p, int64_t from, int64_t to) {
  const add_ctx* k = p;
  for (int64_t i = from; i < to; i++) k->out[i] = k->a[i] + k->b[i];
}

// addSame(a, b, out, n): out = a + b elementwise (same shapes).
napi_value skd_napi_add_same(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "addSame", 4);
  const int64_t n = skd_int(&a, 3);
  if (n < 0) skd_fail(&a, "negative length");
  add_ctx k = {skd_f32(&a, 0, (size_t)n), skd_f32(&a, 1, (size_t)n), skd_f32(&a, 2, (size_t)n)};
  if (!skd_args_ok(&a)) return NULL;
  skd_for(n, n >= SKD_PARALLEL_ELEMENTS, add_range, &k);
  return NULL;
}

typedef struct {
  const float* x;
  float* out;
  int64_t batch, rows, cols;
} transpose_ctx;

#define TB 32

// Blocks of TB rows of one matrix per iteration (iterations run over batch x row blocks).
static void transpose_blocks(void* p, int64_t from, int64_t to) {
  const transpose_ctx* k = p;
  const int64_t blocks = (k->rows + TB - 1) / TB;
  for (int64_t it = from; it < to; it++) {
    const int64_t m = it / blocks, r0 = (it % blocks) * TB, r1 = SKD_MIN(r0 + TB, k->rows);
    const float* x = k->x + m * k->rows * k->cols;
    float* out = k->out + m * k->rows * k->cols;
    for (int64_t c0 = 0; c0 < k->cols; c0 += TB) {
      const int64_t c1 = SKD_MIN(c0 + TB, k->cols);
      for (int64_t r = r0; r < r1; r++)
        for (int64_t c = c0; c < c1; c++) out[c * k->rows + r] = x[r * k->cols + c];
    }
  }
}

// transposeLast2(x, out, batch, rows, cols): each of `batch` (rows, cols) matrices → (cols, rows).
napi_value skd_napi_transpose_last2(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "transposeLast2", 5);
  const int64_t batch = skd_int(&a, 2), rows = skd_int(&a, 3), cols = skd_int(&a, 4);
  if (batch < 0 || rows < 0 || cols < 0) skd_fail(&a, "negative dimension");
  const size_t n = (size_t)(batch * rows * cols);
  transpose_ctx k = {skd_f32(&a, 0, n), skd_f32(&a, 1, n), batch, rows, cols};
  if (!skd_args_ok(&a)) return NULL;
  const int64_t iterations = batch * ((rows + TB - 1) / TB);
  skd_for(iterations, (int64_t)n >= SKD_PARALLEL_ELEMENTS, transpose_blocks, &k);
  return NULL;
}
