// LayerNorm over the last axis, forward and backward, one row per iteration. The forward keeps
// each row's mean and 1/std for the backward, which then needs no second pass over statistics.
#include "common.h"
#include <stdlib.h>

typedef struct {
  const float *x, *gamma, *beta, *dy, *mean_in, *rstd_in;
  float *y, *mean, *rstd, *dx, *partial;
  int64_t rows, width;
  float eps;
} ln_ctx;

static void forward_rows(void* ctx, int64_t from, int64_t to) {
  const ln_ctx* k = ctx;
  const int64_t w = k->width;
  for (int64_t r = from; r < to; r++) {
    const float* xr = k->x + r * w;
    float* yr = k->y + r * w;
    const float mu = skd_sum(xr, w) / (float)w;
    const float inv = 1.0f / sqrtf(skd_sum_squares(xr, w, mu) / (float)w + k->eps);
    for (int64_t j = 0; j < w; j++) yr[j] = (xr[j] - mu) * inv * k->gamma[j] + k->beta[j];
    if (k->mean) k->mean[r] = mu;
    if (k->rstd) k->rstd[r] = inv;
  }
}

void skd_layer_norm_rows(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd, int64_t rows, int64_t width, float eps) {
  ln_ctx k = {.x = x, .gamma = gamma, .beta = beta, .y = y, .mean = mean, .rstd = rstd, .rows = rows, .width = width, .eps = eps};
  skd_for(rows, rows * width >= SKD_PARALLEL_ELEMENTS, forward_rows, &k);
}

// layerNorm(x, gamma, beta, y, mean, rstd, rows, width, epsilon)
napi_value skd_napi_layer_norm(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "layerNorm", 9);
  const int64_t rows = skd_int(&a, 6), width = skd_int(&a, 7);
  const float eps = (float)skd_num(&a, 8);
  if (rows < 0 || width <= 0) skd_fail(&a, "bad shape (%lld, %lld)", (long long)rows, (long long)width);
  const size_t n = (size_t)(rows * width);
  const float* x = skd_f32(&a, 0, n);
  const float* gamma = skd_f32(&a, 1, (size_t)width);
  const float* beta = skd_f32(&a, 2, (size_t)width);
  float* y = skd_f32(&a, 3, n);
  float* mean = skd_f32(&a, 4, (size_t)rows);
  float* rstd = skd_f32(&a, 5, (size_t)rows);
  if (!skd_args_ok(&a)) return NULL;
  skd_layer_norm_rows(x, gamma, beta, y, mean, rstd, rows, width, eps);
  return NULL;
}

// One block of rows per pool thread: dx per row, and this block's dgamma and dbeta partial sums.
static void backward_block(void* ctx, int64_t block, int thread) {
  (void)thread;
  const ln_ctx* k = ctx;
  const int64_t w = k->width, blocks = skd_threads();
  float* pg = k->partial + block * 2 * w;
  float* pb = pg + w;
  for (int64_t r = k->rows * block / blocks; r < k->rows * (block + 1) / blocks; r++) {
    const float* dyr = k->dy + r * w;
    const float* xr = k->x + r * w;
    float* dxr = k->dx + r * w;
    const float mu = k->mean_in[r], inv = k->rstd_in[r];
    // g = dy gamma and xhat in two vectorised passes: m1 = mean(g), m2 = mean(g xhat).
    skd_v8 a1 = {0, 0, 0, 0, 0, 0, 0, 0}, a2 = {0, 0, 0, 0, 0, 0, 0, 0};
    const skd_v8 vmu = {mu, mu, mu, mu, mu, mu, mu, mu}, vinv = {inv, inv, inv, inv, inv, inv, inv, inv};
    int64_t j = 0;
    for (; j + 8 <= w; j += 8) {
      const skd_v8 xhat = (skd_load8(xr + j) - vmu) * vinv, dyv = skd_load8(dyr + j), g = dyv * skd_load8(k->gamma + j);
      a1 += g;
      a2 += g * xhat;
      const skd_v8 gx = skd_load8(pg + j) + dyv * xhat, gb = skd_load8(pb + j) + dyv;
      memcpy(pg + j, &gx, sizeof gx);
      memcpy(pb + j, &gb, sizeof gb);
    }
    float m1 = skd_hsum8(a1), m2 = skd_hsum8(a2);
    for (; j < w; j++) {
      const float xhat = (xr[j] - mu) * inv;
      const float g = dyr[j] * k->gamma[j];
      m1 += g;
      m2 += g * xhat;
      pg[j] += dyr[j] * xhat;
      pb[j] += dyr[j];
    }
    m1 /= (float)w;
    m2 /= (float)w;
    for (int64_t j = 0; j < w; j++) {
      const float xhat = (xr[j] - mu) * inv;
      dxr[j] = inv * (dyr[j] * k->gamma[j] - m1 - xhat * m2);
    }
  }
}

// layerNormGrad(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, rows, width)
// dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy gamma and xhat = (x - mean) rstd;
// dgamma = sum over rows of dy xhat, dbeta = sum of dy. The rows are cut into one block per pool
// thread whatever runs them, and the blocks' partial sums are added in block order: the result is
// the same for every run with the same pool size.
napi_value skd_napi_layer_norm_grad(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "layerNormGrad", 10);
  const int64_t rows = skd_int(&a, 8), width = skd_int(&a, 9);
  if (rows < 0 || width <= 0) skd_fail(&a, "bad shape (%lld, %lld)", (long long)rows, (long long)width);
  const size_t n = (size_t)(rows * width);
  ln_ctx k = {.rows = rows, .width = width};
  k.dy = skd_f32(&a, 0, n);
  k.x = skd_f32(&a, 1, n);
  k.gamma = skd_f32(&a, 2, (size_t)width);
  k.mean_in = skd_f32(&a, 3, (size_t)rows);
  k.rstd_in = skd_f32(&a, 4, (size_t)rows);
  k.dx = skd_f32(&a, 5, n);
  float* dgamma = skd_f32(&a, 6, (size_t)width);
  float* dbeta = skd_f32(&a, 7, (size_t)width);
  if (!skd_args_ok(&a)) return NULL;
  const int blocks = skd_threads();
  k.partial = calloc((size_t)blocks * 2 * (size_t)width, sizeof(float));
  if (!k.partial) {
    napi_throw_error(env, NULL, "skd-native layerNormGrad: out of memory");
    return NULL;
  }
  skd_for_tasks(blocks, (int64_t)n >= SKD_PARALLEL_ELEMENTS, backward_block, &k);
  memcpy(dgamma, k.partial, sizeof(float) * (size_t)width);
  memcpy(dbeta, k.partial + width, sizeof(float) * (size_t)width);
  for (int t = 1; t < blocks; t++) {
    const float* pg = k.partial + (size_t)t * 2 * (size_t)width;
    for (int64_t j = 0; j < width; j++) {
      dgamma[j] += pg[j];
      dbeta[j] += pg[width + j];
    }
  }
  free(k.partial);
  return NULL;
}
