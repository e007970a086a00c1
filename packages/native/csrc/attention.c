// Causal self-attention over packed q|k|v rows, forward and backward. A row of the (B*T, width)
// activation holds the queries of H heads, then the keys and values of Hkv heads (grouped-query
// attention: query head h reads key/value head h / (H / Hkv); Hkv = H is GPT-2's c_attn layout).
// Heads are read in place through the BLAS leading dimension (no split or transpose), and the
// (T, T) weights are never stored: the forward keeps one log-sum-exp per query, and the backward
// recomputes each block of weights from it (the FlashAttention scheme), so memory grows with T,
// not T^2. Queries go in blocks of QB rows; a block only looks at the keys causality (and the
// sliding window, when set) lets it see. Optional soft-capping turns each scaled score s into
// cap * tanh(s / cap) before the softmax (Gemma 2).
#include "common.h"
#include <stdlib.h>

#define QB 64

typedef struct {
  int64_t B, T, H, Hkv, dh;
  float scale, softcap;
  int64_t window;  // 0: every earlier key
} shape_t;

// The first key query i may see.
static int64_t first_key(const shape_t* s, int64_t i) { return s->window > 0 ? SKD_MAX(0, i - s->window + 1) : 0; }

// Soft-caps scaled scores in place; keeps 1 - tanh^2 per entry in `slope` (for the backward) when given.
static void cap_scores(float* s, float* slope, int64_t n, float cap) {
  if (cap <= 0.0f) return;
  for (int64_t j = 0; j < n; j++) {
    const float t = skd_tanh(s[j] / cap);
    s[j] = cap * t;
    if (slope) slope[j] = 1.0f - t * t;
  }
}

// The keys [lo, hi) of a block starting at key k0 that query i may see before the padding mask.
static void visible_span(const shape_t* sh, int64_t k0, int64_t keys, int64_t i, int64_t* lo, int64_t* hi) {
  *lo = SKD_MAX(first_key(sh, i), k0) - k0;
  *hi = SKD_MIN(i + 1 - k0, keys);
  if (*hi < *lo) *hi = *lo;
}

// Scores s of query i over keys [k0, k0 + keys) → probabilities (invisible keys get 0). Returns the
// log-sum-exp, or INFINITY when the query sees no key (its output is then 0).
static float softmax_row(const shape_t* sh, float* s, int64_t k0, int64_t keys, int64_t i, const float* key_mask) {
  int64_t lo, hi;
  visible_span(sh, k0, keys, i, &lo, &hi);
  const float* m = key_mask ? key_mask + k0 : NULL;
  float mx = -INFINITY;
  for (int64_t j = lo; j < hi; j++) if ((!m || m[j] != 0.0f) && s[j] > mx) mx = s[j];
  if (mx == -INFINITY || mx != mx) {
    memset(s, 0, sizeof(float) * (size_t)keys);
    return mx != mx ? mx : INFINITY;
  }
  if (m) {
    for (int64_t j = lo; j < hi; j++) s[j] = m[j] != 0.0f ? skd_exp(s[j] - mx) : 0.0f;
  } else {
    for (int64_t j = lo; j < hi; j++) s[j] = skd_exp(s[j] - mx);
  }
  const float sum = skd_sum(s + lo, hi - lo);
  memset(s, 0, sizeof(float) * (size_t)lo);
  for (int64_t j = hi; j < keys; j++) s[j] = 0;
  const float inv = 1.0f / sum;
  for (int64_t j = lo; j < hi; j++) s[j] *= inv;
  return mx + logf(sum);
}

// Recomputes the probabilities of query i from its scores and saved log-sum-exp.
static void probabilities_row(const shape_t* sh, float* s, int64_t k0, int64_t keys, int64_t i, const float* key_mask, float lse) {
  int64_t lo, hi;
  visible_span(sh, k0, keys, i, &lo, &hi);
  if (lse == INFINITY) lo = hi = 0;
  const float* m = key_mask ? key_mask + k0 : NULL;
  memset(s, 0, sizeof(float) * (size_t)lo);
  for (int64_t j = lo; j < hi; j++) s[j] = !m || m[j] != 0.0f ? skd_exp(s[j] - lse) : 0.0f;
  for (int64_t j = hi; j < keys; j++) s[j] = 0;
}

static bool read_shape(skd_args* a, size_t first, shape_t* s) {
  s->B = skd_int(a, first);
  s->T = skd_int(a, first + 1);
  s->H = skd_int(a, first + 2);
  s->Hkv = skd_int(a, first + 3);
  s->dh = skd_int(a, first + 4);
  s->scale = (float)skd_num(a, first + 5);
  s->softcap = (float)skd_num(a, first + 6);
  s->window = skd_int(a, first + 7);
  if (s->B < 0 || s->T < 0 || s->H <= 0 || s->Hkv <= 0 || s->H % s->Hkv != 0 || s->dh <= 0 || s->window < 0) {
    skd_fail(a, "bad shape B %lld T %lld heads %lld kv heads %lld head size %lld window %lld", (long long)s->B, (long long)s->T, (long long)s->H,
             (long long)s->Hkv, (long long)s->dh, (long long)s->window);
  }
  return a->error[0] == '\0';
}

typedef struct {
  shape_t s;
  const float* qkv;
  const float* mask;
  float* out;  // forward: the output; backward: read
  float* lse;  // forward: written; backward: read
  const float* dy;
  float* dqkv;
  float* scratch;  // per_thread floats per pool thread
  size_t per_thread;
} attention_ctx;

// Offsets of head h's queries and of its key/value head's keys and values within a packed row.
static int64_t row_width(const shape_t* s) { return (s->H + 2 * s->Hkv) * s->dh; }
static int64_t key_offset(const shape_t* s, int64_t h) { return (s->H + h / (s->H / s->Hkv)) * s->dh; }
static int64_t value_offset(const shape_t* s, int64_t h) { return (s->H + s->Hkv + h / (s->H / s->Hkv)) * s->dh; }

static void forward_head(void* ctx, int64_t bh, int thread) {
  const attention_ctx* k = ctx;
  const shape_t s = k->s;
  const int64_t d = s.H * s.dh, ld = row_width(&s);
  float* scores = k->scratch + (size_t)thread * k->per_thread;
  const int64_t b = bh / s.H, h = bh % s.H;
  const float* row0 = k->qkv + b * s.T * ld;
  const float* q = row0 + h * s.dh;
  const float* kk = row0 + key_offset(&s, h);
  const float* v = row0 + value_offset(&s, h);
  float* o = k->out + b * s.T * d + h * s.dh;
  const float* key_mask = k->mask ? k->mask + b * s.T : NULL;
  float* row_lse = k->lse + bh * s.T;
  for (int64_t i0 = 0; i0 < s.T; i0 += QB) {
    const int64_t n = SKD_MIN(QB, s.T - i0), k0 = first_key(&s, i0), keys = i0 + n - k0;
    skd_sgemm_1t(false, true, n, keys, s.dh, s.scale, q + i0 * ld, ld, kk + k0 * ld, ld, 0.0f, scores, keys);  // (n, keys)
    cap_scores(scores, NULL, n * keys, s.softcap);
    for (int64_t r = 0; r < n; r++) row_lse[i0 + r] = softmax_row(&s, scores + r * keys, k0, keys, i0 + r, key_mask);
    skd_sgemm_1t(false, false, n, s.dh, keys, 1.0f, scores, keys, v + k0 * ld, ld, 0.0f, o + i0 * d, d);  // (n, dh)
  }
}

// attention(qkv, mask, out, lse, B, T, heads, kvHeads, headSize, scale, softcap, window)
//   qkv (B*T, (heads + 2 kvHeads) headSize); mask (B*T) 1 for real keys, or null; out (B*T, heads
//   headSize); lse (B*heads*T), the log-sum-exp of each query's scores (kept for the backward).
//   softcap 0: none; window 0: every earlier key.
napi_value skd_napi_attention(napi_env env, napi_callback_info info) {
  skd_args a;
  shape_t s;
  skd_args_init(&a, env, info, "attention", 12);
  read_shape(&a, 4, &s);
  const int64_t d = s.H * s.dh, rows = s.B * s.T;
  const float* qkv = skd_f32(&a, 0, (size_t)(rows * row_width(&s)));
  const float* mask = skd_f32_or_null(&a, 1, (size_t)rows);
  float* out = skd_f32(&a, 2, (size_t)(rows * d));
  float* lse = skd_f32(&a, 3, (size_t)(s.B * s.H * s.T));
  if (!skd_args_ok(&a)) return NULL;
  const size_t per_thread = QB * (size_t)SKD_MAX(s.T, 1);
  attention_ctx k = {s, qkv, mask, out, lse, NULL, NULL, malloc(sizeof(float) * per_thread * (size_t)skd_threads()), per_thread};
  if (!k.scratch) {
    napi_throw_error(env, NULL, "skd-native attention: out of memory");
    return NULL;
  }
  skd_for_tasks(s.B * s.H, s.B * s.H * s.T * s.T * s.dh >= SKD_PARALLEL_MACS, forward_head, &k);
  free(k.scratch);
  return NULL;
}

// The backward of one (batch row, key/value head): the query heads sharing it run in turn, so its
// key and value gradients are accumulated by one thread only.
static void backward_group(void* ctx, int64_t bg, int thread) {
  const attention_ctx* k = ctx;
  const shape_t s = k->s;
  const int64_t d = s.H * s.dh, ld = row_width(&s), group = s.H / s.Hkv;
  const size_t block = QB * (size_t)SKD_MAX(s.T, 1);
  float* p = k->scratch + (size_t)thread * k->per_thread;
  float* dp = p + block;
  float* slope = dp + block;
  float* delta = slope + block;
  const int64_t b = bg / s.Hkv, g = bg % s.Hkv;
  const float* row0 = k->qkv + b * s.T * ld;
  float* drow0 = k->dqkv + b * s.T * ld;
  const float* kk = row0 + key_offset(&s, g * group);
  const float* v = row0 + value_offset(&s, g * group);
  float* dk = drow0 + key_offset(&s, g * group);
  float* dv = drow0 + value_offset(&s, g * group);
  const float* key_mask = k->mask ? k->mask + b * s.T : NULL;
  for (int64_t t = 0; t < s.T; t++) {
    memset(dk + t * ld, 0, sizeof(float) * (size_t)s.dh);
    memset(dv + t * ld, 0, sizeof(float) * (size_t)s.dh);
  }
  for (int64_t h = g * group; h < (g + 1) * group; h++) {
    const float* q = row0 + h * s.dh;
    const float* o = k->out + b * s.T * d + h * s.dh;
    const float* dO = k->dy + b * s.T * d + h * s.dh;
    float* dq = drow0 + h * s.dh;
    const float* row_lse = k->lse + (b * s.H + h) * s.T;
    for (int64_t t = 0; t < s.T; t++) delta[t] = skd_dot(dO + t * d, o + t * d, s.dh);
    for (int64_t i0 = 0; i0 < s.T; i0 += QB) {
      const int64_t n = SKD_MIN(QB, s.T - i0), k0 = first_key(&s, i0), keys = i0 + n - k0;
      skd_sgemm_1t(false, true, n, keys, s.dh, s.scale, q + i0 * ld, ld, kk + k0 * ld, ld, 0.0f, p, keys);  // scores (n, keys)
      cap_scores(p, slope, n * keys, s.softcap);
      for (int64_t r = 0; r < n; r++) probabilities_row(&s, p + r * keys, k0, keys, i0 + r, key_mask, row_lse[i0 + r]);
      skd_sgemm_1t(true, false, keys, s.dh, n, 1.0f, p, keys, dO + i0 * d, d, 1.0f, dv + k0 * ld, ld);  // dV += P^T dO
      skd_sgemm_1t(false, true, n, keys, s.dh, 1.0f, dO + i0 * d, d, v + k0 * ld, ld, 0.0f, dp, keys);  // dP = dO V^T
      for (int64_t r = 0; r < n; r++) {
        float* pr = p + r * keys;
        float* dpr = dp + r * keys;
        const float dr = delta[i0 + r];
        for (int64_t j = 0; j < keys; j++) dpr[j] = pr[j] * (dpr[j] - dr) * s.scale;  // dS
        if (s.softcap > 0.0f) for (int64_t j = 0; j < keys; j++) dpr[j] *= slope[r * keys + j];
      }
      skd_sgemm_1t(false, false, n, s.dh, keys, 1.0f, dp, keys, kk + k0 * ld, ld, 0.0f, dq + i0 * ld, ld);  // dQ = dS K
      skd_sgemm_1t(true, false, keys, s.dh, n, 1.0f, dp, keys, q + i0 * ld, ld, 1.0f, dk + k0 * ld, ld);  // dK += dS^T Q
    }
  }
}

// attentionGrad(qkv, mask, out, lse, dy, dqkv, B, T, heads, kvHeads, headSize, scale, softcap, window)
//   dy (B*T, heads headSize) → dqkv (B*T, (heads + 2 kvHeads) headSize). Per query block, with P
//   recomputed from lse: dV += P^T dO, dP = dO V^T, dS = P (dP - rowsum(dO O)) scale (times the
//   soft-cap's slope 1 - tanh^2), dQ = dS K, dK += dS^T Q.
napi_value skd_napi_attention_grad(napi_env env, napi_callback_info info) {
  skd_args a;
  shape_t s;
  skd_args_init(&a, env, info, "attentionGrad", 14);
  read_shape(&a, 6, &s);
  const int64_t d = s.H * s.dh, ld = row_width(&s), rows = s.B * s.T;
  const float* qkv = skd_f32(&a, 0, (size_t)(rows * ld));
  const float* mask = skd_f32_or_null(&a, 1, (size_t)rows);
  const float* out = skd_f32(&a, 2, (size_t)(rows * d));
  const float* lse = skd_f32(&a, 3, (size_t)(s.B * s.H * s.T));
  const float* dy = skd_f32(&a, 4, (size_t)(rows * d));
  float* dqkv = skd_f32(&a, 5, (size_t)(rows * ld));
  if (!skd_args_ok(&a)) return NULL;
  const size_t per_thread = 3 * QB * (size_t)SKD_MAX(s.T, 1) + (size_t)SKD_MAX(s.T, 1);
  attention_ctx k = {s, qkv, mask, (float*)out, (float*)lse, dy, dqkv, malloc(sizeof(float) * per_thread * (size_t)skd_threads()), per_thread};
  if (!k.scratch) {
    napi_throw_error(env, NULL, "skd-native attentionGrad: out of memory");
    return NULL;
  }
  skd_for_tasks(s.B * s.Hkv, s.B * s.H * s.T * s.T * s.dh >= SKD_PARALLEL_MACS, backward_group, &k);
  free(k.scratch);
  return NULL;
}
