// Sums over a contiguous run of axes: x viewed as (outer, reduce, inner) → out (outer, inner).
// Covers bias and LayerNorm gradients (sums over leading axes), which tfjs-wasm transposes first.
#include "common.h"
#include <stdlib.h>

typedef struct {
  const float* x;
  float* out;
  int64_t outer, reduce, inner;
} sum_ctx;

// One output row per iteration (a sum over the middle axis).
static void sum_outer(void* ctx, int64_t from, int64_t to) {
  const sum_ctx* k = ctx;
  for (int64_t o = from; o < to; o++) {
    float* dst = k->out + o * k->inner;
    const float* src = k->x + o * k->reduce * k->inner;
    if (k->inner == 1) {
      float acc = 0;
      for (int64_t r = 0; r < k->reduce; r++) acc += src[r];
      dst[0] = acc;
      continue;
    }
    memset(dst, 0, sizeof(float) * (size_t)k->inner);
    for (int64_t r = 0; r < k->reduce; r++) {
      const float* row = src + r * k->inner;
      for (int64_t i = 0; i < k->inner; i++) dst[i] += row[i];
    }
  }
}

typedef struct {
  const float* x;
  float* partial;
  int64_t rows, n;
} columns_ctx;

// One block of rows per pool thread, into that block's partial row.
static void column_block(void* ctx, int64_t block, int thread) {
  (void)thread;
  const columns_ctx* k = ctx;
  const int64_t blocks = skd_threads();
  float* acc = k->partial + block * k->n;
  for (int64_t r = k->rows * block / blocks; r < k->rows * (block + 1) / blocks; r++) {
    const float* row = k->x + r * k->n;
    for (int64_t i = 0; i < k->n; i++) acc[i] += row[i];
  }
}

int skd_column_sums(const float* x, int64_t rows, int64_t n, float* out) {
  // Blocks of rows per pool thread whatever runs them, partial rows added in block order: the same
  // sums for every run with this pool size.
  const int blocks = skd_threads();
  columns_ctx k = {.x = x, .rows = rows, .n = n, .partial = calloc((size_t)blocks * (size_t)n, sizeof(float))};
  if (!k.partial) return -1;
  skd_for_tasks(blocks, rows * n >= SKD_PARALLEL_ELEMENTS, column_block, &k);
  memcpy(out, k.partial, sizeof(float) * (size_t)n);
  for (int t = 1; t < blocks; t++) {
    const float* acc = k.partial + (size_t)t * (size_t)n;
    for (int64_t i = 0; i < n; i++) out[i] += acc[i];
  }
  free(k.partial);
  return 0;
}

// sumMiddle(x, out, outer, reduce, inner)
napi_value skd_napi_sum_middle(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "sumMiddle", 5);
  sum_ctx k = {.outer = skd_int(&a, 2), .reduce = skd_int(&a, 3), .inner = skd_int(&a, 4)};
  if (k.outer < 0 || k.reduce < 0 || k.inner < 0) skd_fail(&a, "negative dimension");
  k.x = skd_f32(&a, 0, (size_t)(k.outer * k.reduce * k.inner));
  k.out = skd_f32(&a, 1, (size_t)(k.outer * k.inner));
  if (!skd_args_ok(&a)) return NULL;
  const bool big = k.outer * k.reduce * k.inner >= SKD_PARALLEL_ELEMENTS;
  if (k.outer == 1 && k.inner > 1 && k.reduce >= 64) {
    // A bias gradient: one row summed over many.
    if (skd_column_sums(k.x, k.reduce, k.inner, k.out) != 0) napi_throw_error(env, NULL, "skd-native sumMiddle: out of memory");
    return NULL;
  }
  skd_for(k.outer, big && k.outer >= 64, sum_outer, &k);
  return NULL;
}
