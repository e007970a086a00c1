// Causal self-attention over a packed (B*T, 3d) q|k|v activation, forward and backward, one
// (batch row, head) per task. Heads are read in place through the BLAS leading dimension (no
// split or transpose), and the (T, T) weights are never stored: the forward keeps one
// log-sum-exp per query, and the backward recomputes each block of weights from it (the
// FlashAttention scheme), so memory grows with T, not T^2. Queries go in blocks of QB rows; a block
// only looks at the keys causality lets it see, which skips the upper triangle.
#include "common.h"
#include <stdlib.h>

#define QB 64

static bool visible_key(const float* key_mask, int64_t j) { return !key_mask || key_mask[j] != 0.0f; }

// Scaled scores s[0, keys) of query i → probabilities (keys after i and padding keys get 0).
// Returns the log-sum-exp, or INFINITY when the query sees no key (its output is then 0).
static float softmax_row(float* s, int64_t keys, int64_t i, const float* key_mask) {
  const int64_t visible = SKD_MIN(i + 1, keys);
  float mx = -INFINITY;
  for (int64_t j = 0; j < visible; j++) if (visible_key(key_mask, j) && s[j] > mx) mx = s[j];
  if (mx == -INFINITY || mx != mx) {
    memset(s, 0, sizeof(float) * (size_t)keys);
    return mx != mx ? mx : INFINITY;
  }
  if (key_mask) {
    for (int64_t j = 0; j < visible; j++) s[j] = key_mask[j] != 0.0f ? skd_exp(s[j] - mx) : 0.0f;
  } else {
    for (int64_t j = 0; j < visible; j++) s[j] = skd_exp(s[j] - mx);
  }
  const float sum = skd_sum(s, visible);
  for (int64_t j = visible; j < keys; j++) s[j] = 0;
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < visible; j++) s[j] *= inv;
  return mx + logf(sum);
}

// Recomputes the probabilities of query i from its scaled scores and saved log-sum-exp.
static void probabilities_row(float* s, int64_t keys, int64_t i, const float* key_mask, float lse) {
  const int64_t visible = lse == INFINITY ? 0 : SKD_MIN(i + 1, keys);
  for (int64_t j = 0; j < visible; j++) s[j] = visible_key(key_mask, j) ? skd_exp(s[j] - lse) : 0.0f;
  for (int64_t j = visible; j < keys; j++) s[j] = 0;
}

typedef struct {
  int64_t B, T, H, dh;
  float scale;
} shape_t;

static bool read_shape(skd_args* a, size_t first, shape_t* s) {
  s->B = skd_int(a, first);
  s->T = skd_int(a, first + 1);
  s->H = skd_int(a, first + 2);
  s->dh = skd_int(a, first + 3);
  s->scale = (float)skd_num(a, first + 4);
  if (s->B < 0 || s->T < 0 || s->H <= 0 || s->dh <= 0) {
    skd_fail(a, "bad shape B %lld T %lld heads %lld head size %lld", (long long)s->B, (long long)s->T, (long long)s->H, (long long)s->dh);
  }
  return a->error[0] == '\0';
}

typedef struct {
  shape_t s;
  const float* qkv;
  const float* mask;
  float* out;  // forward: the output; backward: unused
  float* lse;  // forward: written; backward: read
  const float* dy;
  float* dqkv;
  float* scratch;  // per_thread floats per pool thread
  size_t per_thread;
} attention_ctx;

static void forward_head(void* ctx, int64_t bh, int thread) {
  const attention_ctx* k = ctx;
  const shape_t s = k->s;
  const int64_t d = s.H * s.dh, ld = 3 * d;
  float* scores = k->scratch + (size_t)thread * k->per_thread;
  const int64_t b = bh / s.H, h = bh % s.H;
  const float* q = k->qkv + b * s.T * ld + h * s.dh;
  const float* kk = q + d;
  const float* v = q + 2 * d;
  float* o = k->out + b * s.T * d + h * s.dh;
  const float* key_mask = k->mask ? k->mask + b * s.T : NULL;
  float* row_lse = k->lse + bh * s.T;
  for (int64_t i0 = 0; i0 < s.T; i0 += QB) {
    const int64_t n = SKD_MIN(QB, s.T - i0), keys = i0 + n;
    skd_sgemm_1t(false, true, n, keys, s.dh, s.scale, q + i0 * ld, ld, kk, ld, 0.0f, scores, keys);  // (n, keys)
    for (int64_t r = 0; r < n; r++) row_lse[i0 + r] = softmax_row(scores + r * keys, keys, i0 + r, key_mask);
    skd_sgemm_1t(false, false, n, s.dh, keys, 1.0f, scores, keys, v, ld, 0.0f, o + i0 * d, d);  // (n, dh)
  }
}

// attention(qkv, mask, out, lse, B, T, heads, headSize, scale)
//   qkv (B*T, 3d) with d = heads * headSize; mask (B*T) 1 for real keys, or null; out (B*T, d);
//   lse (B*heads*T), the log-sum-exp of each query's scaled scores (kept for the backward).
napi_value skd_napi_attention(napi_env env, napi_callback_info info) {
  skd_args a;
  shape_t s;
  skd_args_init(&a, env, info, "attention", 9);
  read_shape(&a, 4, &s);
  const int64_t d = s.H * s.dh, ld = 3 * d, rows = s.B * s.T;
  const float* qkv = skd_f32(&a, 0, (size_t)(rows * ld));
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

static void backward_head(void* ctx, int64_t bh, int thread) {
  const attention_ctx* k = ctx;
  const shape_t s = k->s;
  const int64_t d = s.H * s.dh, ld = 3 * d;
  const size_t block = QB * (size_t)SKD_MAX(s.T, 1);
  float* p = k->scratch + (size_t)thread * k->per_thread;
  float* dp = p + block;
  float* delta = dp + block;
  const int64_t b = bh / s.H, h = bh % s.H;
  const float* q = k->qkv + b * s.T * ld + h * s.dh;
  const float* kk = q + d;
  const float* v = q + 2 * d;
  const float* o = k->out + b * s.T * d + h * s.dh;
  const float* dO = k->dy + b * s.T * d + h * s.dh;
  float* dq = k->dqkv + b * s.T * ld + h * s.dh;
  float* dk = dq + d;
  float* dv = dq + 2 * d;
  const float* key_mask = k->mask ? k->mask + b * s.T : NULL;
  const float* row_lse = k->lse + bh * s.T;
  for (int64_t t = 0; t < s.T; t++) {
    delta[t] = skd_dot(dO + t * d, o + t * d, s.dh);
    memset(dk + t * ld, 0, sizeof(float) * (size_t)s.dh);
    memset(dv + t * ld, 0, sizeof(float) * (size_t)s.dh);
  }
  for (int64_t i0 = 0; i0 < s.T; i0 += QB) {
    const int64_t n = SKD_MIN(QB, s.T - i0), keys = i0 + n;
    skd_sgemm_1t(false, true, n, keys, s.dh, s.scale, q + i0 * ld, ld, kk, ld, 0.0f, p, keys);  // scores (n, keys)
    for (int64_t r = 0; r < n; r++) probabilities_row(p + r * keys, keys, i0 + r, key_mask, row_lse[i0 + r]);
    skd_sgemm_1t(true, false, keys, s.dh, n, 1.0f, p, keys, dO + i0 * d, d, 1.0f, dv, ld);  // dV += P^T dO
    skd_sgemm_1t(false, true, n, keys, s.dh, 1.0f, dO + i0 * d, d, v, ld, 0.0f, dp, keys);  // dP = dO V^T
    for (int64_t r = 0; r < n; r++) {
      float* pr = p + r * keys;
      float* dpr = dp + r * keys;
      const float dr = delta[i0 + r];
      for (int64_t j = 0; j < keys; j++) dpr[j] = pr[j] * (dpr[j] - dr) * s.scale;  // dS
    }
    skd_sgemm_1t(false, false, n, s.dh, keys, 1.0f, dp, keys, kk, ld, 0.0f, dq + i0 * ld, ld);  // dQ = dS K
    skd_sgemm_1t(true, false, keys, s.dh, n, 1.0f, dp, keys, q + i0 * ld, ld, 1.0f, dk, ld);  // dK += dS^T Q
  }
}

// attentionGrad(qkv, mask, out, lse, dy, dqkv, B, T, heads, headSize, scale)
//   dy (B*T, d) → dqkv (B*T, 3d). Per query block, with P recomputed from lse:
//   dV += P^T dO, dP = dO V^T, dS = P (dP - rowsum(dO O)) scale, dQ = dS K, dK += dS^T Q.
napi_value skd_napi_attention_grad(napi_env env, napi_callback_info info) {
  skd_args a;
  shape_t s;
  skd_args_init(&a, env, info, "attentionGrad", 11);
  read_shape(&a, 6, &s);
  const int64_t d = s.H * s.dh, ld = 3 * d, rows = s.B * s.T;
  const float* qkv = skd_f32(&a, 0, (size_t)(rows * ld));
  const float* mask = skd_f32_or_null(&a, 1, (size_t)rows);
  const float* out = skd_f32(&a, 2, (size_t)(rows * d));
  const float* lse = skd_f32(&a, 3, (size_t)(s.B * s.H * s.T));
  const float* dy = skd_f32(&a, 4, (size_t)(rows * d));
  float* dqkv = skd_f32(&a, 5, (size_t)(rows * ld));
  if (!skd_args_ok(&a)) return NULL;
  const size_t per_thread = 2 * QB * (size_t)SKD_MAX(s.T, 1) + (size_t)SKD_MAX(s.T, 1);
  attention_ctx k = {s, qkv, mask, (float*)out, (float*)lse, dy, dqkv, malloc(sizeof(float) * per_thread * (size_t)skd_threads()), per_thread};
  if (!k.scratch) {
    napi_throw_error(env, NULL, "skd-native attentionGrad: out of memory");
    return NULL;
  }
  skd_for_tasks(s.B * s.H, s.B * s.H * s.T * s.T * s.dh >= SKD_PARALLEL_MACS, backward_head, &k);
  free(k.scratch);
  return NULL;
}
