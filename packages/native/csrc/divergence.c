// Forward KL(P || softmax(s)) from teacher log-probabilities and student logits, value and gradient,
// one row per iteration. It is the default loss of SKD and of most baselines, over (B*T, V): the
// composite form makes about ten full passes each way through stock element-wise kernels, which
// took 40% of a supervised-KD step at V = 4000.
#include "common.h"

// One row-kernel context for every divergence here; the mixture weights (w, a, b) are read by the
// mixture kernels only.
typedef struct {
  const float *log_p, *x, *dy, *lse_in;
  float *loss, *lse, *dx;
  int64_t width;
  float w, a, b;
} div_ctx;

// The arguments every forward call starts with, (logP, logits, loss, lse, rows, width), as views in k;
// returns rows. A bad argument is recorded in a (skd_args_ok reports it).
static int64_t forward_args(skd_args* a, div_ctx* k) {
  const int64_t rows = skd_int(a, 4), width = skd_int(a, 5);
  if (rows < 0 || width <= 0) skd_fail(a, "bad shape (%lld, %lld)", (long long)rows, (long long)width);
  const size_t n = rows > 0 && width > 0 ? (size_t)(rows * width) : 0;
  *k = (div_ctx){.log_p = skd_f32(a, 0, n), .x = skd_f32(a, 1, n), .loss = skd_f32(a, 2, (size_t)rows), .lse = skd_f32(a, 3, (size_t)rows), .width = width};
  return rows;
}

// The arguments every backward call starts with, (dy, logP, logits, lse, dx, rows, width); returns rows.
static int64_t backward_args(skd_args* a, div_ctx* k) {
  const int64_t rows = skd_int(a, 5), width = skd_int(a, 6);
  if (rows < 0 || width <= 0) skd_fail(a, "bad shape (%lld, %lld)", (long long)rows, (long long)width);
  const size_t n = rows > 0 && width > 0 ? (size_t)(rows * width) : 0;
  *k = (div_ctx){.dy = skd_f32(a, 0, (size_t)rows), .log_p = skd_f32(a, 1, n), .x = skd_f32(a, 2, n), .lse_in = skd_f32(a, 3, (size_t)rows),
                 .dx = skd_f32(a, 4, n), .width = width};
  return rows;
}

static void forward_kl_rows(void* ctx, int64_t from, int64_t to) {
  const div_ctx* k = ctx;
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
  div_ctx k;
  skd_args_init(&a, env, info, "forwardKl", 6);
  const int64_t rows = forward_args(&a, &k);
  if (!skd_args_ok(&a)) return NULL;
  skd_for(rows, rows * k.width >= SKD_PARALLEL_ELEMENTS, forward_kl_rows, &k);
  return NULL;
}

static void forward_kl_grad_rows(void* ctx, int64_t from, int64_t to) {
  const div_ctx* k = ctx;
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
  div_ctx k;
  skd_args_init(&a, env, info, "forwardKlGrad", 7);
  const int64_t rows = backward_args(&a, &k);
  if (!skd_args_ok(&a)) return NULL;
  skd_for(rows, rows * k.width >= SKD_PARALLEL_ELEMENTS, forward_kl_grad_rows, &k);
  return NULL;
}

// Divergences to a mixture M = w P + (1 - w) Q, Q = softmax(s), 0 < w < 1:
//   value = a KL(P || M) + b KL(Q || M)
// GKD's generalised JSD(beta) is (w, a, b) = (beta, beta, 1 - beta); DistiLLM's skew KL(alpha) is
// (alpha, 1, 0) and its skew reverse KL(alpha) is (1 - alpha, 0, 1). Per entry, with d = log q - log p
// and s = w + (1 - w) e^d = m / p: log(p / m) = -log s and log(q / m) = d - log s, so the ratios never
// divide by an underflowed mixture, and where P has no mass (log p = -inf) log(q / m) = -log(1 - w).
// The gradient in the logits is q (g - sum q g) with g = df/dq = -(1 - w)(a p + b q) / m + b log(q / m)
// (the constant b of d(q log q)/dq cancels under the softmax Jacobian).
// Beyond this d, e^d would overflow s: log s = log(1 - w) + d + log1p(w / (1 - w) e^-d) instead.
#define SKD_MIXTURE_SWITCH 20.0f

/** log(p / m) and log(q / m) of one entry (see above); *rp is -inf where P has no mass. */
static inline void mixture_ratios(float lp, float lq, float w, float* rp, float* rq) {
  if (lp == -INFINITY) {
    *rp = -INFINITY;
    *rq = -log1pf(-w);
    return;
  }
  const float d = lq - lp;
  const float log_s = d > SKD_MIXTURE_SWITCH ? log1pf(-w) + d + log1pf(w / (1.0f - w) * skd_exp(-d)) : logf(w + (1.0f - w) * skd_exp(d));
  *rp = -log_s;
  *rq = d - log_s;
}

static void mixture_kl_rows(void* ctx, int64_t from, int64_t to) {
  const div_ctx* k = ctx;
  for (int64_t r = from; r < to; r++) {
    const float* pr = k->log_p + r * k->width;
    const float* xr = k->x + r * k->width;
    const float lse = skd_log_sum_exp(xr, k->width);
    double total = 0;
    for (int64_t j = 0; j < k->width; j++) {
      const float lp = pr[j], lq = xr[j] - lse;
      float rp, rq;
      mixture_ratios(lp, lq, k->w, &rp, &rq);
      const float p = skd_exp(lp), q = skd_exp(lq);
      // Entries without mass contribute exactly 0, whatever the other distribution holds there.
      if (k->a != 0 && p > 0) total += k->a * p * rp;
      if (k->b != 0 && q > 0) total += k->b * q * rq;
    }
    k->lse[r] = lse;
    // Clamped at 0 so identical inputs give exactly 0, not rounding noise below it; NaN stays NaN.
    k->loss[r] = total < 0 ? 0.0f : (float)total;
  }
}

static void mixture_kl_grad_rows(void* ctx, int64_t from, int64_t to) {
  const div_ctx* k = ctx;
  const float wq = 1.0f - k->w;
  for (int64_t r = from; r < to; r++) {
    const float* pr = k->log_p + r * k->width;
    const float* xr = k->x + r * k->width;
    float* dxr = k->dx + r * k->width;
    const float lse = k->lse_in[r];
    double qg_sum = 0;
    // First pass: dx holds q g (0 where Q has no mass), and sum q g accumulates.
    for (int64_t j = 0; j < k->width; j++) {
      const float lp = pr[j], lq = xr[j] - lse;
      const float q = skd_exp(lq);
      if (!(q > 0)) {
        dxr[j] = 0;
        continue;
      }
      float rp, rq;
      mixture_ratios(lp, lq, k->w, &rp, &rq);
      const float p_over_m = lp == -INFINITY ? 0.0f : skd_exp(rp), q_over_m = skd_exp(rq);
      const float g = -wq * (k->a * p_over_m + k->b * q_over_m) + k->b * rq;
      dxr[j] = q * g;
      qg_sum += dxr[j];
    }
    const float g = k->dy[r], s = (float)qg_sum;
    for (int64_t j = 0; j < k->width; j++) dxr[j] = g * (dxr[j] - skd_exp(xr[j] - lse) * s);
  }
}

static void mixture_weights(skd_args* a, size_t i, div_ctx* k) {
  k->w = (float)skd_num(a, i);
  k->a = (float)skd_num(a, i + 1);
  k->b = (float)skd_num(a, i + 2);
  if (!(k->w > 0 && k->w < 1)) skd_fail(a, "mixture weight %g is outside (0, 1)", (double)k->w);
}

// mixtureKl(logP, logits, loss, lse, rows, width, w, a, b): loss[r] = a KL(p || m) + b KL(q || m),
// m = w p + (1 - w) softmax(x_r); lse[r] = logsumexp(x_r), kept for the backward pass.
napi_value skd_napi_mixture_kl(napi_env env, napi_callback_info info) {
  skd_args a;
  div_ctx k;
  skd_args_init(&a, env, info, "mixtureKl", 9);
  const int64_t rows = forward_args(&a, &k);
  mixture_weights(&a, 6, &k);
  if (!skd_args_ok(&a)) return NULL;
  skd_for(rows, rows * k.width >= SKD_PARALLEL_ELEMENTS, mixture_kl_rows, &k);
  return NULL;
}

// mixtureKlGrad(dy, logP, logits, lse, dx, rows, width, w, a, b): dx = dy[r] q (g - sum q g).
napi_value skd_napi_mixture_kl_grad(napi_env env, napi_callback_info info) {
  skd_args a;
  div_ctx k;
  skd_args_init(&a, env, info, "mixtureKlGrad", 10);
  const int64_t rows = backward_args(&a, &k);
  mixture_weights(&a, 7, &k);
  if (!skd_args_ok(&a)) return NULL;
  skd_for(rows, rows * k.width >= SKD_PARALLEL_ELEMENTS, mixture_kl_grad_rows, &k);
  return NULL;
}
