// Forward KL(P || softmax(s)) from teacher log-probabilities and student logits, value and gradient,
// one row per iteration. It is the default loss of SKD and of most baselines, over (B*T, V): the
// composite form makes about ten full passes each way through stock element-wise kernels, which
// took 40% of a supervised-KD step at V = 4000.
#include "common.h"

typedef struct {
  const float *log_p, *x, *dy, *lse_in;
  float *loss, *lse, *dx;
  int64_t width;
} kl_ctx;

static void forward_kl_rows(void* ctx, int64_t from, int64_t to) {
  const kl_ctx* k = ctx;
  float chunk[256];
  for (int64_t r = from; r < to; r++) {
    const float* pr = k->log_p + r * k->width;
    const float* xr = k->x + r * k->width;
    const float lse = skd_log_sum_exp(xr, k->width);
    float total = 0;
    for (int64_t i = 0; i < k->width; i += 256) {
      const int64_t m = SKD_MIN(256, k->width - i);
      // Where P has no mass the term is exactly 0, whatever log Q is (a masked vocabulary stays finite).
      for (int64_t j = 0; j < m; j++) {
        const float lp = pr[i + j];
        const float p = skd_exp(lp);
        chunk[j] = p > 0 ? p * (lp - (xr[i + j] - lse)) : 0.0f;
      }
      total += skd_sum(chunk, m);
    }
    k->lse[r] = lse;
    // Clamped at 0 so identical inputs give exactly 0, not rounding noise below it; NaN stays NaN.
    k->loss[r] = total < 0 ? 0.0f : total;
  }
}

// forwardKl(logP, logits, loss, lse, rows, width): loss[r] = sum_j p (log p - log softmax(x))_j,
// lse[r] = logsumexp(x_r), kept for the backward pass.
napi_value skd_napi_forward_kl(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "forwardKl", 6);
  const int64_t rows = skd_int(&a, 4), width = skd_int(&a, 5);
  if (rows < 0 || width <= 0) skd_fail(&a, "bad shape (%lld, %lld)", (long long)rows, (long long)width);
  const size_t n = rows > 0 && width > 0 ? (size_t)(rows * width) : 0;
  kl_ctx k = {.log_p = skd_f32(&a, 0, n), .x = skd_f32(&a, 1, n), .loss = skd_f32(&a, 2, (size_t)rows), .lse = skd_f32(&a, 3, (size_t)rows), .width = width};
  if (!skd_args_ok(&a)) return NULL;
  skd_for(rows, rows * width >= SKD_PARALLEL_ELEMENTS, forward_kl_rows, &k);
  return NULL;
}

static void forward_kl_grad_rows(void* ctx, int64_t from, int64_t to) {
  const kl_ctx* k = ctx;
  for (int64_t r = from; r < to; r++) {
    const float* pr = k->log_p + r * k->width;
    const float* xr = k->x + r * k->width;
    float* dxr = k->dx + r * k->width;
    const float g = k->dy[r], lse = k->lse_in[r];
    for (int64_t j = 0; j < k->width; j++) dxr[j] = g * (skd_exp(xr[j] - lse) - skd_exp(pr[j]));
  }
}

// forwardKlGrad(dy, logP, logits, lse, dx, rows, width): dx = dy[r] (softmax(x) - p).
napi_value skd_napi_forward_kl_grad(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "forwardKlGrad", 7);
  const int64_t rows = skd_int(&a, 5), width = skd_int(&a, 6);
  if (rows < 0 || width <= 0) skd_fail(&a, "bad shape (%lld, %lld)", (long long)rows, (long long)width);
  const size_t n = rows > 0 && width > 0 ? (size_t)(rows * width) : 0;
  kl_ctx k = {.dy = skd_f32(&a, 0, (size_t)rows), .log_p = skd_f32(&a, 1, n), .x = skd_f32(&a, 2, n), .lse_in = skd_f32(&a, 3, (size_t)rows),
              .dx = skd_f32(&a, 4, n), .width = width};
  if (!skd_args_ok(&a)) return NULL;
  skd_for(rows, rows * width >= SKD_PARALLEL_ELEMENTS, forward_kl_grad_rows, &k);
  return NULL;
}
