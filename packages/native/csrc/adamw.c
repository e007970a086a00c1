// The AdamW update of one parameter tensor in one pass (the stock form is a dozen full passes).
#include "common.h"

typedef struct {
  const float *p, *g, *m, *v;
  float *po, *mo, *vo;
  float lr, b1, b2, eps, c1, c2, keep;
} adamw_ctx;

static void adamw_range(void* ctx, int64_t from, int64_t to) {
  const adamw_ctx* k = ctx;
  for (int64_t i = from; i < to; i++) {
    const float gi = k->g[i];
    const float mi = k->b1 * k->m[i] + (1.0f - k->b1) * gi;
    const float vi = k->b2 * k->v[i] + (1.0f - k->b2) * gi * gi;
    k->mo[i] = mi;
    k->vo[i] = vi;
    k->po[i] = k->p[i] * k->keep - k->lr * ((mi / k->c1) / (sqrtf(vi / k->c2) + k->eps));
  }
}

// adamw(param, grad, m, v, outParam, outM, outV, n, lr, beta1, beta2, epsilon, decay, c1, c2)
//   m' = b1 m + (1 - b1) g;  v' = b2 v + (1 - b2) g^2;
//   p' = p (1 - lr decay) - lr (m' / c1) / (sqrt(v' / c2) + eps)   (c1, c2: bias corrections)
napi_value skd_napi_adamw(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "adamw", 15);
  const int64_t n = skd_int(&a, 7);
  if (n < 0) skd_fail(&a, "negative length");
  adamw_ctx k;
  k.lr = (float)skd_num(&a, 8);
  k.b1 = (float)skd_num(&a, 9);
  k.b2 = (float)skd_num(&a, 10);
  k.eps = (float)skd_num(&a, 11);
  k.keep = 1.0f - k.lr * (float)skd_num(&a, 12);
  k.c1 = (float)skd_num(&a, 13);
  k.c2 = (float)skd_num(&a, 14);
  k.p = skd_f32(&a, 0, (size_t)n);
  k.g = skd_f32(&a, 1, (size_t)n);
  k.m = skd_f32(&a, 2, (size_t)n);
  k.v = skd_f32(&a, 3, (size_t)n);
  k.po = skd_f32(&a, 4, (size_t)n);
  k.mo = skd_f32(&a, 5, (size_t)n);
  k.vo = skd_f32(&a, 6, (size_t)n);
  if (!skd_args_ok(&a)) return NULL;
  skd_for(n, n >= SKD_PARALLEL_ELEMENTS, adamw_range, &k);
  return NULL;
}
