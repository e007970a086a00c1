// Sums over a contiguous run of axes: x viewed as (outer, reduce, inner) → out (outer, inner).
// Covers bias and LayerNorm gradients (sums over leading axes), which tfjs-wasm transposes first.
#include "common.h"
#include <omp.h>
#include <stdlib.h>

// sumMiddle(x, out, outer, reduce, inner)
napi_value skd_napi_sum_middle(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "sumMiddle", 5);
  const int64_t outer = skd_int(&a, 2), reduce = skd_int(&a, 3), inner = skd_int(&a, 4);
  if (outer < 0 || reduce < 0 || inner < 0) skd_fail(&a, "negative dimension");
  const float* x = skd_f32(&a, 0, (size_t)(outer * reduce * inner));
  float* out = skd_f32(&a, 1, (size_t)(outer * inner));
  if (!skd_args_ok(&a)) return NULL;
  const int threads = skd_threads();
  if (outer == 1 && inner > 1 && reduce >= 64 && threads > 1 && reduce * inner >= 65536) {
    // One output row summed over many rows (a bias gradient): each thread sums a contiguous block
    // of rows, then the partial rows are added in thread order (deterministic for a pool size).
    float* partial = calloc((size_t)threads * (size_t)inner, sizeof(float));
    if (!partial) {
      napi_throw_error(env, NULL, "skd-native sumMiddle: out of memory");
      return NULL;
    }
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num(), n = omp_get_num_threads();
      const int64_t from = reduce * t / n, to = reduce * (t + 1) / n;
      float* acc = partial + (size_t)t * (size_t)inner;
      for (int64_t r = from; r < to; r++) {
        const float* row = x + r * inner;
        for (int64_t i = 0; i < inner; i++) acc[i] += row[i];
      }
    }
    memcpy(out, partial, sizeof(float) * (size_t)inner);
    for (int t = 1; t < threads; t++) {
      const float* acc = partial + (size_t)t * (size_t)inner;
      for (int64_t i = 0; i < inner; i++) out[i] += acc[i];
    }
    free(partial);
    return NULL;
  }
#pragma omp parallel for schedule(static) num_threads(threads) if (outer >= 64 && outer * reduce * inner >= 65536)
  for (int64_t o = 0; o < outer; o++) {
    float* dst = out + o * inner;
    const float* src = x + o * reduce * inner;
    if (inner == 1) {
      float acc = 0;
      for (int64_t r = 0; r < reduce; r++) acc += src[r];
      dst[0] = acc;
      continue;
    }
    memset(dst, 0, sizeof(float) * (size_t)inner);
    for (int64_t r = 0; r < reduce; r++) {
      const float* row = src + r * inner;
      for (int64_t i = 0; i < inner; i++) dst[i] += row[i];
    }
  }
  return NULL;
}
