// LayerNorm over the last axis, forward and backward, one row per iteration. The forward keeps
// each row's mean and 1/std for the backward, which then needs no second pass over statistics.
#include "common.h"
#include <omp.h>
#include <stdlib.h>

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
#pragma omp parallel for schedule(static) num_threads(skd_threads()) if (n >= 32768)
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * width;
    float* yr = y + r * width;
    float sum = 0;
    for (int64_t j = 0; j < width; j++) sum += xr[j];
    const float mu = sum / (float)width;
    float sq = 0;
    for (int64_t j = 0; j < width; j++) {
      const float c = xr[j] - mu;
      sq += c * c;
    }
    const float inv = 1.0f / sqrtf(sq / (float)width + eps);
    for (int64_t j = 0; j < width; j++) yr[j] = (xr[j] - mu) * inv * gamma[j] + beta[j];
    mean[r] = mu;
    rstd[r] = inv;
  }
  return NULL;
}

// layerNormGrad(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, rows, width)
// dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy gamma and xhat = (x - mean) rstd;
// dgamma = sum over rows of dy xhat, dbeta = sum of dy (per-thread partial sums added in thread
// order, so the result is the same for every run with the same pool size).
napi_value skd_napi_layer_norm_grad(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "layerNormGrad", 10);
  const int64_t rows = skd_int(&a, 8), width = skd_int(&a, 9);
  if (rows < 0 || width <= 0) skd_fail(&a, "bad shape (%lld, %lld)", (long long)rows, (long long)width);
  const size_t n = (size_t)(rows * width);
  const float* dy = skd_f32(&a, 0, n);
  const float* x = skd_f32(&a, 1, n);
  const float* gamma = skd_f32(&a, 2, (size_t)width);
  const float* mean = skd_f32(&a, 3, (size_t)rows);
  const float* rstd = skd_f32(&a, 4, (size_t)rows);
  float* dx = skd_f32(&a, 5, n);
  float* dgamma = skd_f32(&a, 6, (size_t)width);
  float* dbeta = skd_f32(&a, 7, (size_t)width);
  if (!skd_args_ok(&a)) return NULL;
  const int threads = n >= 32768 ? skd_threads() : 1;
  float* partial = calloc((size_t)threads * 2 * (size_t)width, sizeof(float));
  if (!partial) {
    napi_throw_error(env, NULL, "skd-native layerNormGrad: out of memory");
    return NULL;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    float* pg = partial + (size_t)t * 2 * (size_t)width;
    float* pb = pg + width;
    const int64_t from = rows * t / nt, to = rows * (t + 1) / nt;
    for (int64_t r = from; r < to; r++) {
      const float* dyr = dy + r * width;
      const float* xr = x + r * width;
      float* dxr = dx + r * width;
      const float mu = mean[r], inv = rstd[r];
      float m1 = 0, m2 = 0;
      for (int64_t j = 0; j < width; j++) {
        const float xhat = (xr[j] - mu) * inv;
        const float g = dyr[j] * gamma[j];
        m1 += g;
        m2 += g * xhat;
        pg[j] += dyr[j] * xhat;
        pb[j] += dyr[j];
      }
      m1 /= (float)width;
      m2 /= (float)width;
      for (int64_t j = 0; j < width; j++) {
        const float xhat = (xr[j] - mu) * inv;
        dxr[j] = inv * (dyr[j] * gamma[j] - m1 - xhat * m2);
      }
    }
  }
  memcpy(dgamma, partial, sizeof(float) * (size_t)width);
  memcpy(dbeta, partial + width, sizeof(float) * (size_t)width);
  for (int t = 1; t < threads; t++) {
    const float* pg = partial + (size_t)t * 2 * (size_t)width;
    for (int64_t j = 0; j < width; j++) {
      dgamma[j] += pg[j];
      dbeta[j] += pg[width + j];
    }
  }
  free(partial);
  return NULL;
}
