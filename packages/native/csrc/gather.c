// Embedding lookups (gather of rows) and their gradient (unsorted segment sum).
#include "common.h"

// gatherRows(table, indices, out, count, inner, rows): out[r, :] = table[indices[r], :]. Returns
// the position of the first out-of-range index, or -1 when all are valid (the caller throws).
napi_value skd_napi_gather_rows(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "gatherRows", 6);
  const int64_t count = skd_int(&a, 3), inner = skd_int(&a, 4), rows = skd_int(&a, 5);
  if (count < 0 || inner < 0 || rows < 0) skd_fail(&a, "negative dimension");
  const float* table = skd_f32(&a, 0, (size_t)(rows * inner));
  const int32_t* indices = skd_i32(&a, 1, (size_t)count);
  float* out = skd_f32(&a, 2, (size_t)(count * inner));
  if (!skd_args_ok(&a)) return NULL;
  for (int64_t r = 0; r < count; r++) {
    const int32_t k = indices[r];
    if (k < 0 || k >= rows) return skd_int_result(env, r);
    memcpy(out + r * inner, table + (int64_t)k * inner, sizeof(float) * (size_t)inner);
  }
  return skd_int_result(env, -1);
}

// unsortedSegmentSum(x, ids, out, rows, inner, numSegments): out[ids[r], :] += x[r, :]; ids outside
// [0, numSegments) are dropped, as TensorFlow does. out is zeroed first.
napi_value skd_napi_unsorted_segment_sum(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "unsortedSegmentSum", 6);
  const int64_t rows = skd_int(&a, 3), inner = skd_int(&a, 4), segments = skd_int(&a, 5);
  if (rows < 0 || inner < 0 || segments < 0) skd_fail(&a, "negative dimension");
  const float* x = skd_f32(&a, 0, (size_t)(rows * inner));
  const int32_t* ids = skd_i32(&a, 1, (size_t)rows);
  float* out = skd_f32(&a, 2, (size_t)(segments * inner));
  if (!skd_args_ok(&a)) return NULL;
  memset(out, 0, sizeof(float) * (size_t)(segments * inner));
  for (int64_t r = 0; r < rows; r++) {
    const int32_t s = ids[r];
    if (s < 0 || s >= segments) continue;
    float* dst = out + (int64_t)s * inner;
    const float* src = x + r * inner;
    for (int64_t j = 0; j < inner; j++) dst[j] += src[j];
  }
  return NULL;
}
