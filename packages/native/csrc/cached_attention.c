// Attention of S new tokens per row over a preallocated key/value cache, for incremental decoding.
// Each row keeps its own length: a row's real new tokens (mask 1) are written at its next free
// slots and attend to its cached tokens and, causally, to each other. Padding slots are neither
// written nor attended (their outputs are 0), so rows that advance by different amounts (SKD's
// accepted drafts) share one cache without masked holes, and rolling a row back is just a shorter
// length. The cache is written in place: it belongs to one decode state and is never shared.
#include "common.h"
#include <omp.h>
#include <stdlib.h>

// cachedAttention(qkv, keys, values, lengths, mask, out, B, S, heads, headSize, capacity, scale)
//   qkv (B*S, 3d) for the new tokens; keys, values (B, heads, capacity, headSize); lengths (B) real
//   tokens cached per row before this call; mask (B*S) or null; out (B*S, d).
napi_value skd_napi_cached_attention(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "cachedAttention", 12);
  const int64_t B = skd_int(&a, 6), S = skd_int(&a, 7), H = skd_int(&a, 8), dh = skd_int(&a, 9), cap = skd_int(&a, 10);
  const float scale = (float)skd_num(&a, 11);
  if (B < 0 || S < 0 || H <= 0 || dh <= 0 || cap < 0) skd_fail(&a, "bad shape");
  const int64_t d = H * dh, ld = 3 * d;
  const float* qkv = skd_f32(&a, 0, (size_t)(B * S * ld));
  float* keys = skd_f32(&a, 1, (size_t)(B * H * cap * dh));
  float* values = skd_f32(&a, 2, (size_t)(B * H * cap * dh));
  const int32_t* lengths = skd_i32(&a, 3, (size_t)B);
  const float* mask = skd_f32_or_null(&a, 4, (size_t)(B * S));
  float* out = skd_f32(&a, 5, (size_t)(B * S * d));
  for (int64_t b = 0; a.error[0] == '\0' && b < B; b++) {
    int64_t n = 0;
    for (int64_t j = 0; j < S; j++) n += !mask || mask[b * S + j] != 0.0f;
    if (lengths[b] < 0 || lengths[b] + n > cap) skd_fail(&a, "row %lld: %d cached + %lld new tokens exceed the capacity %lld", (long long)b, lengths[b], (long long)n, (long long)cap);
  }
  if (!skd_args_ok(&a)) return NULL;
  bool failed = false;
#pragma omp parallel num_threads(skd_threads()) if (B * H > 1 && (S > 1 || cap >= 256))
  {
    int64_t* real = malloc(sizeof(int64_t) * (size_t)SKD_MAX(S, 1));
    float* q = malloc(sizeof(float) * (size_t)(SKD_MAX(S, 1) * (2 * dh + cap)));
    if (!real || !q) failed = true;
#pragma omp for schedule(dynamic)
    for (int64_t bh = 0; bh < B * H; bh++) {
      if (!real || !q) continue;
      const int64_t b = bh / H, h = bh % H, len = lengths[b];
      float* kc = keys + bh * cap * dh;
      float* vc = values + bh * cap * dh;
      int64_t n = 0;
      for (int64_t j = 0; j < S; j++) {
        const float* row = qkv + (b * S + j) * ld + h * dh;
        float* o = out + (b * S + j) * d + h * dh;
        if (mask && mask[b * S + j] == 0.0f) {
          memset(o, 0, sizeof(float) * (size_t)dh);
          continue;
        }
        memcpy(q + n * dh, row, sizeof(float) * (size_t)dh);
        memcpy(kc + (len + n) * dh, row + d, sizeof(float) * (size_t)dh);
        memcpy(vc + (len + n) * dh, row + 2 * d, sizeof(float) * (size_t)dh);
        real[n++] = j;
      }
      if (n == 0) continue;
      const int64_t total = len + n;
      float* scores = q + n * dh;  // (n, total)
      float* o = scores + n * total;  // (n, dh)
      skd_sgemm_1t(false, true, n, total, dh, scale, q, dh, kc, dh, 0.0f, scores, total);
      for (int64_t r = 0; r < n; r++) {
        float* s = scores + r * total;
        const int64_t visible = len + r + 1;
        float mx = -INFINITY;
        for (int64_t j = 0; j < visible; j++) mx = s[j] > mx ? s[j] : mx;
        float sum = 0;
        for (int64_t j = 0; j < visible; j++) {
          s[j] = skd_exp(s[j] - mx);
          sum += s[j];
        }
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j < visible; j++) s[j] *= inv;
        for (int64_t j = visible; j < total; j++) s[j] = 0;
      }
      skd_sgemm_1t(false, false, n, dh, total, 1.0f, scores, total, vc, dh, 0.0f, o, dh);
      for (int64_t r = 0; r < n; r++) memcpy(out + (b * S + real[r]) * d + h * dh, o + r * dh, sizeof(float) * (size_t)dh);
    }
    free(real);
    free(q);
  }
  if (failed) napi_throw_error(env, NULL, "skd-native cachedAttention: out of memory");
  return NULL;
}
