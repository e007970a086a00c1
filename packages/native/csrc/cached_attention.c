// Attention of S new tokens per row over a preallocated key/value cache, for incremental decoding.
// Each row keeps its own length: a row's real new tokens (mask 1) are written at its next free
// slots and attend to its cached tokens and, causally, to each other. Padding slots are neither
// written nor attended (their outputs are 0), so rows that advance by different amounts (SKD's
// accepted drafts) share one cache without masked holes, and rolling a row back is just a shorter
// length. The cache is written in place: it belongs to one decode state and is never shared.
//
// Layout: keys (B, H, headSize, capacity), transposed, so the scores are one plain product of the
// queries (n, headSize) by the keys (headSize, length); values (B, H, capacity, headSize).
#include "common.h"
#include <stdlib.h>

// Softmax of s[0, visible) in place; entries from visible to total are set to 0.
static void softmax_prefix(float* s, int64_t visible, int64_t total) {
  const float mx = skd_max(s, visible);
  for (int64_t j = 0; j < visible; j++) s[j] = skd_exp(s[j] - mx);
  const float inv = 1.0f / skd_sum(s, visible);
  for (int64_t j = 0; j < visible; j++) s[j] *= inv;
  for (int64_t j = visible; j < total; j++) s[j] = 0;
}

typedef struct {
  const float* qkv;
  float *keys, *values, *out;
  const int32_t* lengths;
  const float* mask;
  skd_attention_shape shape;
  int64_t B, S, cap;
  int64_t* real;  // S per pool thread
  float* scratch;  // group S (2 dh + cap) per pool thread
} cache_ctx;

// One (batch row, key/value head): writes the row's new keys and values into the cache, then runs
// the attention of every query head that shares them.
static void attend_group(void* ctx, int64_t bg, int thread) {
  const cache_ctx* k = ctx;
  const skd_attention_shape* sh = &k->shape;
  const int64_t S = k->S, dh = sh->dh, cap = k->cap, H = sh->H, Hkv = sh->Hkv, group = H / Hkv;
  const int64_t d = H * dh, ld = (H + 2 * Hkv) * dh;
  int64_t* real = k->real + (size_t)thread * (size_t)SKD_MAX(S, 1);
  float* q = k->scratch + (size_t)thread * (size_t)(group * SKD_MAX(S, 1) * (2 * dh + cap));
  const int64_t b = bg / Hkv, g = bg % Hkv, len = k->lengths[b];
  float* kc = k->keys + bg * cap * dh;
  float* vc = k->values + bg * cap * dh;
  int64_t n = 0;
  for (int64_t j = 0; j < S; j++) {
    const float* row = k->qkv + (b * S + j) * ld;
    if (k->mask && k->mask[b * S + j] == 0.0f) {
      for (int64_t h = g * group; h < (g + 1) * group; h++) memset(k->out + (b * S + j) * d + h * dh, 0, sizeof(float) * (size_t)dh);
      continue;
    }
    const float* key = row + (H + g) * dh;
    for (int64_t c = 0; c < dh; c++) kc[c * cap + len + n] = key[c];
    memcpy(vc + (len + n) * dh, row + (H + Hkv + g) * dh, sizeof(float) * (size_t)dh);
    real[n++] = j;
  }
  if (n == 0) return;
  // The group's query heads go together, rows (head, query) in that order: one product over the
  // group's keys and one over its values serve all of them. The BLAS beat register-blocked loops
  // of skd's own at every size measured, one row included (tools/bench/cached-attention.cjs).
  const int64_t total = len + n, rows = group * n;
  float* scores = q + rows * dh;     // (rows, total)
  float* o = scores + rows * total;  // (rows, dh)
  for (int64_t h = 0; h < group; h++)
    for (int64_t r = 0; r < n; r++) memcpy(q + (h * n + r) * dh, k->qkv + (b * S + real[r]) * ld + (g * group + h) * dh, sizeof(float) * (size_t)dh);
  skd_sgemm_1t(false, false, rows, total, dh, sh->scale, q, dh, kc, cap, 0.0f, scores, total);
  for (int64_t r = 0; r < rows; r++) {
    float* row = scores + r * total;
    const int64_t position = len + r % n, first = sh->window > 0 ? SKD_MAX(0, position - sh->window + 1) : 0;
    if (sh->softcap > 0.0f) for (int64_t j = first; j <= position; j++) row[j] = sh->softcap * skd_tanh(row[j] / sh->softcap);
    memset(row, 0, sizeof(float) * (size_t)first);
    softmax_prefix(row + first, position + 1 - first, total - first);
  }
  skd_sgemm_1t(false, false, rows, dh, total, 1.0f, scores, total, vc, dh, 0.0f, o, dh);
  for (int64_t h = 0; h < group; h++)
    for (int64_t r = 0; r < n; r++) memcpy(k->out + (b * S + real[r]) * d + (g * group + h) * dh, o + (h * n + r) * dh, sizeof(float) * (size_t)dh);
}

bool skd_cached_attention_core(const float* qkv, float* keys, float* values, const int32_t* lengths, const float* mask, float* out, int64_t B,
                               int64_t S, const skd_attention_shape* shape, int64_t cap) {
  int64_t macs = 0;  // scores and weighted sum: new tokens x keys x head size, twice, per head
  for (int64_t b = 0; b < B; b++) macs += 2 * S * (lengths[b] + S) * shape->dh * shape->H;
  const size_t threads = (size_t)skd_threads();
  const int64_t dh = shape->dh;
  cache_ctx k = {qkv, keys, values, out, lengths, mask, *shape, B, S, cap,
                 malloc(sizeof(int64_t) * (size_t)SKD_MAX(S, 1) * threads), malloc(sizeof(float) * (size_t)(shape->H / shape->Hkv * SKD_MAX(S, 1) * (2 * dh + cap)) * threads)};
  const bool ok = k.real && k.scratch;
  if (ok) skd_for_tasks(B * shape->Hkv, B * shape->Hkv > 1 && macs >= SKD_PARALLEL_MACS, attend_group, &k);
  free(k.real);
  free(k.scratch);
  return ok;
}

/** Fails `a` unless every row's new real tokens fit in its remaining capacity. */
void skd_check_cache_room(skd_args* a, const int32_t* lengths, const float* mask, int64_t B, int64_t S, int64_t cap) {
  for (int64_t b = 0; a->error[0] == '\0' && b < B; b++) {
    int64_t n = 0;
    for (int64_t j = 0; j < S; j++) n += !mask || mask[b * S + j] != 0.0f;
    if (lengths[b] < 0 || lengths[b] + n > cap) skd_fail(a, "row %lld: %d cached + %lld new tokens exceed the capacity %lld", (long long)b, lengths[b], (long long)n, (long long)cap);
  }
}

// cachedAttention(qkv, keys, values, lengths, mask, out, B, S, heads, kvHeads, headSize, capacity, scale, softcap, window)
//   qkv (B*S, (heads + 2 kvHeads) headSize) for the new tokens; keys (B, kvHeads, headSize,
//   capacity); values (B, kvHeads, capacity, headSize); lengths (B) real tokens cached per row
//   before this call; mask (B*S) or null; out (B*S, heads headSize). softcap and window 0: off.
napi_value skd_napi_cached_attention(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "cachedAttention", 15);
  const int64_t B = skd_int(&a, 6), S = skd_int(&a, 7), cap = skd_int(&a, 11);
  const skd_attention_shape shape = {.H = skd_int(&a, 8), .Hkv = skd_int(&a, 9), .dh = skd_int(&a, 10), .scale = (float)skd_num(&a, 12),
                                     .softcap = (float)skd_num(&a, 13), .window = skd_int(&a, 14)};
  if (B < 0 || S < 0 || shape.H <= 0 || shape.Hkv <= 0 || shape.H % shape.Hkv != 0 || shape.dh <= 0 || cap < 0 || shape.window < 0) skd_fail(&a, "bad shape");
  const int64_t d = shape.H * shape.dh, ld = (shape.H + 2 * shape.Hkv) * shape.dh, cache = B * shape.Hkv * cap * shape.dh;
  const float* qkv = skd_f32(&a, 0, (size_t)(B * S * ld));
  float* keys = skd_f32(&a, 1, (size_t)cache);
  float* values = skd_f32(&a, 2, (size_t)cache);
  const int32_t* lengths = skd_i32(&a, 3, (size_t)B);
  const float* mask = skd_f32_or_null(&a, 4, (size_t)(B * S));
  float* out = skd_f32(&a, 5, (size_t)(B * S * d));
  if (a.error[0] == '\0') skd_check_cache_room(&a, lengths, mask, B, S, cap);
  if (!skd_args_ok(&a)) return NULL;
  if (!skd_cached_attention_core(qkv, keys, values, lengths, mask, out, B, S, &shape, cap)) {
    napi_throw_error(env, NULL, "skd-native cachedAttention: out of memory");
  }
  return NULL;
}
