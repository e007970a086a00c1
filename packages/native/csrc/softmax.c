// Log-softmax over the last axis and next-token cross-entropy, forward and backward, one row per
// iteration: every divergence starts from log-softmax, and supervised training from the
// cross-entropy, over (B*T, V) logits whose stock form is a handful of full passes each way.
#include "common.h"
#include <omp.h>

static float row_log_sum_exp(const float* x, int64_t width) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < width; j++) mx = x[j] > mx ? x[j] : mx;
  if (mx == -INFINITY || mx != mx) return mx;
  float sum = 0;
  for (int64_t j = 0; j < width; j++) sum += skd_exp(x[j] - mx);
  return mx + logf(sum);
}

static bool read_rows(skd_args* a, size_t at, int64_t* rows, int64_t* width) {
  *rows = skd_int(a, at);
  *width = skd_int(a, at + 1);
  if (*rows < 0 || *width <= 0) skd_fail(a, "bad shape (%lld, %lld)", (long long)*rows, (long long)*width);
  return a->error[0] == '\0';
}

// logSoftmax(x, y, rows, width)
napi_value skd_napi_log_softmax(napi_env env, napi_callback_info info) {
  skd_args a;
  int64_t rows = 0, width = 0;
  skd_args_init(&a, env, info, "logSoftmax", 4);
  read_rows(&a, 2, &rows, &width);
  const float* x = skd_f32(&a, 0, (size_t)(rows * width));
  float* y = skd_f32(&a, 1, (size_t)(rows * width));
  if (!skd_args_ok(&a)) return NULL;
#pragma omp parallel for schedule(static) num_threads(skd_threads()) if (rows * width >= 32768)
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * width;
    float* yr = y + r * width;
    const float lse = row_log_sum_exp(xr, width);
    for (int64_t j = 0; j < width; j++) yr[j] = xr[j] - lse;
  }
  return NULL;
}

// logSoftmaxGrad(dy, y, dx, rows, width): dx = dy - exp(y) sum(dy).
napi_value skd_napi_log_softmax_grad(napi_env env, napi_callback_info info) {
  skd_args a;
  int64_t rows = 0, width = 0;
  skd_args_init(&a, env, info, "logSoftmaxGrad", 5);
  read_rows(&a, 3, &rows, &width);
  const float* dy = skd_f32(&a, 0, (size_t)(rows * width));
  const float* y = skd_f32(&a, 1, (size_t)(rows * width));
  float* dx = skd_f32(&a, 2, (size_t)(rows * width));
  if (!skd_args_ok(&a)) return NULL;
#pragma omp parallel for schedule(static) num_threads(skd_threads()) if (rows * width >= 32768)
  for (int64_t r = 0; r < rows; r++) {
    const float* dyr = dy + r * width;
    const float* yr = y + r * width;
    float* dxr = dx + r * width;
    float sum = 0;
    for (int64_t j = 0; j < width; j++) sum += dyr[j];
    for (int64_t j = 0; j < width; j++) dxr[j] = dyr[j] - skd_exp(yr[j]) * sum;
  }
  return NULL;
}

// crossEntropy(logits, targets, loss, lse, rows, width): loss[r] = lse[r] - logits[r, targets[r]].
// Returns the first row whose target is outside [0, width), or -1.
napi_value skd_napi_cross_entropy(napi_env env, napi_callback_info info) {
  skd_args a;
  int64_t rows = 0, width = 0;
  skd_args_init(&a, env, info, "crossEntropy", 6);
  read_rows(&a, 4, &rows, &width);
  const float* x = skd_f32(&a, 0, (size_t)(rows * width));
  const int32_t* targets = skd_i32(&a, 1, (size_t)rows);
  float* loss = skd_f32(&a, 2, (size_t)rows);
  float* lse = skd_f32(&a, 3, (size_t)rows);
  if (!skd_args_ok(&a)) return NULL;
  for (int64_t r = 0; r < rows; r++) {
    if (targets[r] < 0 || targets[r] >= width) return skd_int_result(env, r);
  }
#pragma omp parallel for schedule(static) num_threads(skd_threads()) if (rows * width >= 32768)
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * width;
    lse[r] = row_log_sum_exp(xr, width);
    loss[r] = lse[r] - xr[targets[r]];
  }
  return skd_int_result(env, -1);
}

// crossEntropyGrad(dy, logits, targets, lse, dx, rows, width): dx = (softmax(x) - onehot) dy[r].
napi_value skd_napi_cross_entropy_grad(napi_env env, napi_callback_info info) {
  skd_args a;
  int64_t rows = 0, width = 0;
  skd_args_init(&a, env, info, "crossEntropyGrad", 7);
  read_rows(&a, 5, &rows, &width);
  const float* dy = skd_f32(&a, 0, (size_t)rows);
  const float* x = skd_f32(&a, 1, (size_t)(rows * width));
  const int32_t* targets = skd_i32(&a, 2, (size_t)rows);
  const float* lse = skd_f32(&a, 3, (size_t)rows);
  float* dx = skd_f32(&a, 4, (size_t)(rows * width));
  if (!skd_args_ok(&a)) return NULL;
#pragma omp parallel for schedule(static) num_threads(skd_threads()) if (rows * width >= 32768)
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * width;
    float* dxr = dx + r * width;
    const float g = dy[r], l = lse[r];
    for (int64_t j = 0; j < width; j++) dxr[j] = skd_exp(xr[j] - l) * g;
    if (targets[r] >= 0 && targets[r] < width) dxr[targets[r]] -= g;
  }
  return NULL;
}
