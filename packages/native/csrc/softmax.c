// Log-softmax over the last axis and next-token cross-entropy, forward and backward, one row per
// iteration: every divergence starts from log-softmax, and supervised training from the
// cross-entropy, over (B*T, V) logits whose stock form is a handful of full passes each way.
#include "common.h"

typedef struct {
  const float *x, *dy, *y, *lse_in;
  const int32_t* targets;
  float *out, *lse, *loss;
  int64_t width;
} sm_ctx;

static bool read_rows(skd_args* a, size_t at, int64_t* rows, int64_t* width) {
  *rows = skd_int(a, at);
  *width = skd_int(a, at + 1);
  if (*rows < 0 || *width <= 0) skd_fail(a, "bad shape (%lld, %lld)", (long long)*rows, (long long)*width);
  return a->error[0] == '\0';
}

static void log_softmax_rows(void* ctx, int64_t from, int64_t to) {
  const sm_ctx* k = ctx;
  for (int64_t r = from; r < to; r++) {
    const float* xr = k->x + r * k->width;
    float* yr = k->out + r * k->width;
    const float lse = skd_log_sum_exp(xr, k->width);
    for (int64_t j = 0; j < k->width; j++) yr[j] = xr[j] - lse;
  }
}

// logSoftmax(x, y, rows, width)
napi_value skd_napi_log_softmax(napi_env env, napi_callback_info info) {
  skd_args a;
  int64_t rows = 0, width = 0;
  skd_args_init(&a, env, info, "logSoftmax", 4);
  read_rows(&a, 2, &rows, &width);
  sm_ctx k = {.x = skd_f32(&a, 0, (size_t)(rows * width)), .out = skd_f32(&a, 1, (size_t)(rows * width)), .width = width};
  if (!skd_args_ok(&a)) return NULL;
  skd_for(rows, rows * width >= SKD_PARALLEL_ELEMENTS, log_softmax_rows, &k);
  return NULL;
}

static void log_softmax_grad_rows(void* ctx, int64_t from, int64_t to) {
  const sm_ctx* k = ctx;
  for (int64_t r = from; r < to; r++) {
    const float* dyr = k->dy + r * k->width;
    const float* yr = k->y + r * k->width;
    float* dxr = k->out + r * k->width;
    const float sum = skd_sum(dyr, k->width);
    for (int64_t j = 0; j < k->width; j++) dxr[j] = dyr[j] - skd_exp(yr[j]) * sum;
  }
}

// logSoftmaxGrad(dy, y, dx, rows, width): dx = dy - exp(y) sum(dy).
napi_value skd_napi_log_softmax_grad(napi_env env, napi_callback_info info) {
  skd_args a;
  int64_t rows = 0, width = 0;
  skd_args_init(&a, env, info, "logSoftmaxGrad", 5);
  read_rows(&a, 3, &rows, &width);
  sm_ctx k = {.dy = skd_f32(&a, 0, (size_t)(rows * width)), .y = skd_f32(&a, 1, (size_t)(rows * width)), .out = skd_f32(&a, 2, (size_t)(rows * width)), .width = width};
  if (!skd_args_ok(&a)) return NULL;
  skd_for(rows, rows * width >= SKD_PARALLEL_ELEMENTS, log_softmax_grad_rows, &k);
  return NULL;
}

static void cross_entropy_rows(void* ctx, int64_t from, int64_t to) {
  const sm_ctx* k = ctx;
  for (int64_t r = from; r < to; r++) {
    const float* xr = k->x + r * k->width;
    k->lse[r] = skd_log_sum_exp(xr, k->width);
    k->loss[r] = k->lse[r] - xr[k->targets[r]];
  }
}

// crossEntropy(logits, targets, loss, lse, rows, width): loss[r] = lse[r] - logits[r, targets[r]].
// Returns the first row whose target is outside [0, width), or -1.
napi_value skd_napi_cross_entropy(napi_env env, napi_callback_info info) {
  skd_args a;
  int64_t rows = 0, width = 0;
  skd_args_init(&a, env, info, "crossEntropy", 6);
  read_rows(&a, 4, &rows, &width);
  sm_ctx k = {.x = skd_f32(&a, 0, (size_t)(rows * width)), .targets = skd_i32(&a, 1, (size_t)rows), .loss = skd_f32(&a, 2, (size_t)rows), .lse = skd_f32(&a, 3, (size_t)rows), .width = width};
  if (!skd_args_ok(&a)) return NULL;
  for (int64_t r = 0; r < rows; r++) {
    if (k.targets[r] < 0 || k.targets[r] >= width) return skd_int_result(env, r);
  }
  skd_for(rows, rows * width >= SKD_PARALLEL_ELEMENTS, cross_entropy_rows, &k);
  return skd_int_result(env, -1);
}

static void cross_entropy_grad_rows(void* ctx, int64_t from, int64_t to) {
  const sm_ctx* k = ctx;
  for (int64_t r = from; r < to; r++) {
    const float* xr = k->x + r * k->width;
    float* dxr = k->out + r * k->width;
    const float g = k->dy[r], l = k->lse_in[r];
    for (int64_t j = 0; j < k->width; j++) dxr[j] = skd_exp(xr[j] - l) * g;
    if (k->targets[r] >= 0 && k->targets[r] < k->width) dxr[k->targets[r]] -= g;
  }
}

// crossEntropyGrad(dy, logits, targets, lse, dx, rows, width): dx = (softmax(x) - onehot) dy[r].
napi_value skd_napi_cross_entropy_grad(napi_env env, napi_callback_info info) {
  skd_args a;
  int64_t rows = 0, width = 0;
  skd_args_init(&a, env, info, "crossEntropyGrad", 7);
  read_rows(&a, 5, &rows, &width);
  sm_ctx k = {.dy = skd_f32(&a, 0, (size_t)rows), .x = skd_f32(&a, 1, (size_t)(rows * width)), .targets = skd_i32(&a, 2, (size_t)rows),
              .lse_in = skd_f32(&a, 3, (size_t)rows), .out = skd_f32(&a, 4, (size_t)(rows * width)), .width = width};
  if (!skd_args_ok(&a)) return NULL;
  skd_for(rows, rows * width >= SKD_PARALLEL_ELEMENTS, cross_entropy_grad_rows, &k);
  return NULL;
}
