// The AdamW update of one parameter tensor in one pass (the stock form is a dozen full passes).
#include "common.h"
#include <omp.h>

// adamw(param, grad, m, v, outParam, outM, outV, n, lr, beta1, beta2, epsilon, decay, c1, c2)
//   m' = b1 m + (1 - b1) g;  v' = b2 v + (1 - b2) g^2;
//   p' = p (1 - lr decay) - lr (m' / c1) / (sqrt(v' / c2) + eps)   (c1, c2: bias corrections)
napi_value skd_napi_adamw(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "adamw", 15);
  const int64_t n = skd_int(&a, 7);
  const float lr = (float)skd_num(&a, 8), b1 = (float)skd_num(&a, 9), b2 = (float)skd_num(&a, 10), eps = (float)skd_num(&a, 11);
  const float decay = (float)skd_num(&a, 12), c1 = (float)skd_num(&a, 13), c2 = (float)skd_num(&a, 14);
  if (n < 0) skd_fail(&a, "negative length");
  const float* p = skd_f32(&a, 0, (size_t)n);
  const float* g = skd_f32(&a, 1, (size_t)n);
  const float* m = skd_f32(&a, 2, (size_t)n);
  const float* v = skd_f32(&a, 3, (size_t)n);
  float* po = skd_f32(&a, 4, (size_t)n);
  float* mo = skd_f32(&a, 5, (size_t)n);
  float* vo = skd_f32(&a, 6, (size_t)n);
  if (!skd_args_ok(&a)) return NULL;
  const float keep = 1.0f - lr * decay;
#pragma omp parallel for schedule(static) num_threads(skd_threads()) if (n >= 65536)
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i];
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    mo[i] = mi;
    vo[i] = vi;
    po[i] = p[i] * keep - lr * ((mi / c1) / (sqrtf(vi / c2) + eps));
  }
  return NULL;
}
