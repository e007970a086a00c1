// RMSNorm over the last axis, forward and backward: y = x rstd (offset + w), rstd = 1 / sqrt(mean(x^2)
// + eps), with offset 0 (Llama, Qwen2) or 1 (Gemma, whose weights hold the scale minus one). The
// forward keeps rstd per row for the backward.
#include "common.h"
#include <stdlib.h>

typedef struct {
  const float *x, *w, *dy, *rstd_in;
  float *y, *rstd, *dx, *partial;
  int64_t rows, width;
  float eps, offset;
} rms_ctx;

static void forward_rows(void* ctx, int64_t from, int64_t to) {
  const rms_ctx* k = ctx;
  const int64_t n = k->width;
  for (int64_t r = from; r < to; r++) {
    const float* xr = k->x + r * n;
    float* yr = k->y + r * n;
    const float inv = 1.0f / sqrtf(skd_sum_squares(xr, n, 0.0f) / (float)n + k->eps);
    for (int64_t j = 0; j < n; j++) yr[j] = xr[j] * inv * (k->w[j] + k->offset);
    k->rstd[r] = inv;
  }
}

// rmsNorm(x, weight, y, rstd, rows, width, epsilon, offset)
napi_value skd_napi_rms_norm(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "rmsNorm", 8);
  rms_ctx k = {.rows = skd_int(&a, 4), .width = skd_int(&a, 5), .eps = (float)skd_num(&a, 6), .offset = (float)skd_num(&a, 7)};
  if (k.rows < 0 || k.width <= 0) skd_fail(&a, "bad shape (%lld, %lld)", (long long)k.rows, (long long)k.width);
  const size_t n = (size_t)(k.rows * k.width);
  k.x = skd_f32(&a, 0, n);
  k.w = skd_f32(&a, 1, (size_t)k.width);
  k.y = skd_f32(&a, 2, n);
  k.rstd = skd_f32(&a, 3, (size_t)k.rows);
  if (!skd_args_ok(&a)) return NULL;
  skd_for(k.rows, (int64_t)n >= SKD_PARALLEL_ELEMENTS, forward_rows, &k);
  return NULL;
}

// One block of rows per pool thread: dx per row, and this block's partial sums of dweight.
static void backward_block(void* ctx, int64_t block, int thread) {
  (void)thread;
  const rms_ctx* k = ctx;
  const int64_t n = k->width, blocks = skd_threads();
  float* pw = k->partial + block * n;
  for (int64_t r = k->rows * block / blocks; r < k->rows * (block + 1) / blocks; r++) {
    const float* dyr = k->dy + r * n;
    const float* xr = k->x + r * n;
    float* dxr = k->dx + r * n;
    const float inv = k->rstd_in[r];
    float m = 0;  // mean of g x with g = dy (offset + w)
    for (int64_t j = 0; j < n; j++) {
      m += dyr[j] * (k->w[j] + k->offset) * xr[j];
      pw[j] += dyr[j] * xr[j] * inv;
    }
    m /= (float)n;
    const float c = inv * inv * m;
    for (int64_t j = 0; j < n; j++) dxr[j] = inv * (dyr[j] * (k->w[j] + k->offset) - xr[j] * c);
  }
}

// rmsNormGrad(dy, x, weight, rstd, dx, dweight, rows, width, offset)
// dx = rstd (g - x rstd^2 mean(g x)) with g = dy (offset + w); dweight = sum over rows of dy x rstd.
// Rows are cut into one block per pool thread and the partial sums added in block order, so the
// result is the same for every run with the same pool size.
napi_value skd_napi_rms_norm_grad(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "rmsNormGrad", 9);
  rms_ctx k = {.rows = skd_int(&a, 6), .width = skd_int(&a, 7), .offset = (float)skd_num(&a, 8)};
  if (k.rows < 0 || k.width <= 0) skd_fail(&a, "bad shape (%lld, %lld)", (long long)k.rows, (long long)k.width);
  const size_t n = (size_t)(k.rows * k.width);
  k.dy = skd_f32(&a, 0, n);
  k.x = skd_f32(&a, 1, n);
  k.w = skd_f32(&a, 2, (size_t)k.width);
  k.rstd_in = skd_f32(&a, 3, (size_t)k.rows);
  k.dx = skd_f32(&a, 4, n);
  float* dweight = skd_f32(&a, 5, (size_t)k.width);
  if (!skd_args_ok(&a)) return NULL;
  const int blocks = skd_threads();
  k.partial = calloc((size_t)blocks * (size_t)k.width, sizeof(float));
  if (!k.partial) {
    napi_throw_error(env, NULL, "skd-native rmsNormGrad: out of memory");
    return NULL;
  }
  skd_for_tasks(blocks, (int64_t)n >= SKD_PARALLEL_ELEMENTS, backward_block, &k);
  memcpy(dweight, k.partial, sizeof(float) * (size_t)k.width);
  for (int t = 1; t < blocks; t++) {
    const float* pw = k.partial + (size_t)t * (size_t)k.width;
    for (int64_t j = 0; j < k.width; j++) dweight[j] += pw[j];
  }
  free(k.partial);
  return NULL;
}
