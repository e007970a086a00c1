// A dense layer with its residual connection, forward and backward, each in one call:
// out = residual + x w + bias, and dx = dy w^T, dw = x^T dy, dbias = column sums of dy.
#include "common.h"

typedef struct {
  float* out;
  const float* bias;
  int64_t n_out;
} bias_ctx;

static void add_bias_rows(void* ctx, int64_t from, int64_t to) {
  const bias_ctx* k = ctx;
  for (int64_t r = from; r < to; r++) {
    float* row = k->out + r * k->n_out;
    for (int64_t j = 0; j < k->n_out; j++) row[j] += k->bias[j];
  }
}

void skd_add_bias(float* out, const float* bias, int64_t rows, int64_t n) {
  bias_ctx k = {.out = out, .bias = bias, .n_out = n};
  skd_for(rows, rows * n >= SKD_PARALLEL_ELEMENTS, add_bias_rows, &k);
}

void skd_linear_rows(const float* x, const float* w, const float* bias, const float* residual, float* out, int64_t rows, int64_t n_in, int64_t n_out) {
  if (residual && residual != out) memcpy(out, residual, sizeof(float) * (size_t)(rows * n_out));
  skd_sgemm(false, false, rows, n_out, n_in, 1.0f, x, n_in, w, n_out, residual ? 1.0f : 0.0f, out, n_out);
  if (bias) skd_add_bias(out, bias, rows, n_out);
}

// linear(x, w, bias, residual, out, rows, inputs, outputs): bias and residual may be null.
napi_value skd_napi_linear(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "linear", 8);
  const int64_t rows = skd_int(&a, 5), n_in = skd_int(&a, 6), n_out = skd_int(&a, 7);
  if (rows < 0 || n_in < 0 || n_out <= 0) skd_fail(&a, "bad shape (%lld, %lld) -> %lld", (long long)rows, (long long)n_in, (long long)n_out);
  const float* x = skd_f32(&a, 0, (size_t)(rows * n_in));
  const float* w = skd_f32(&a, 1, (size_t)(n_in * n_out));
  const float* bias = skd_f32_or_null(&a, 2, (size_t)n_out);
  const float* residual = skd_f32_or_null(&a, 3, (size_t)(rows * n_out));
  float* out = skd_f32(&a, 4, (size_t)(rows * n_out));
  if (!skd_args_ok(&a)) return NULL;
  skd_linear_rows(x, w, bias, residual, out, rows, n_in, n_out);
  return NULL;
}

// linearGrad(dy, x, w, dx, dw, dbias, rows, inputs, outputs): dbias may be null.
napi_value skd_napi_linear_grad(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "linearGrad", 9);
  const int64_t rows = skd_int(&a, 6), n_in = skd_int(&a, 7), n_out = skd_int(&a, 8);
  if (rows < 0 || n_in < 0 || n_out <= 0) skd_fail(&a, "bad shape (%lld, %lld) -> %lld", (long long)rows, (long long)n_in, (long long)n_out);
  const float* dy = skd_f32(&a, 0, (size_t)(rows * n_out));
  const float* x = skd_f32(&a, 1, (size_t)(rows * n_in));
  const float* w = skd_f32(&a, 2, (size_t)(n_in * n_out));
  float* dx = skd_f32(&a, 3, (size_t)(rows * n_in));
  float* dw = skd_f32(&a, 4, (size_t)(n_in * n_out));
  float* dbias = skd_f32_or_null(&a, 5, (size_t)n_out);
  if (!skd_args_ok(&a)) return NULL;
  skd_sgemm(false, true, rows, n_in, n_out, 1.0f, dy, n_out, w, n_out, 0.0f, dx, n_in);  // dy w^T
  skd_sgemm(true, false, n_in, n_out, rows, 1.0f, x, n_in, dy, n_out, 0.0f, dw, n_out);  // x^T dy
  if (dbias && skd_column_sums(dy, rows, n_out, dbias) != 0) napi_throw_error(env, NULL, "skd-native linearGrad: out of memory");
  return NULL;
}
