// Shared declarations of the native kernels. Every kernel works in place on typed-array views of
// the wasm heap (no copies): the caller passes views taken after all outputs were allocated.
#ifndef SKD_COMMON_H
#define SKD_COMMON_H

#include <node_api.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// ---- arguments (args.c) ----------------------------------------------------------------------
// A function reads all its arguments, then calls skd_args_ok once: the first problem (wrong type,
// a view too small) is thrown as a JS error naming the function, and NULL is returned.
typedef struct {
  napi_env env;
  size_t argc;
  napi_value argv[32];
  const char* fn;
  char error[240];
} skd_args;

bool skd_args_init(skd_args* a, napi_env env, napi_callback_info info, const char* fn, size_t expected);
float* skd_f32(skd_args* a, size_t i, size_t min_length);
float* skd_f32_or_null(skd_args* a, size_t i, size_t min_length);
int32_t* skd_i32(skd_args* a, size_t i, size_t min_length);
double* skd_f64(skd_args* a, size_t i, size_t min_length);
uint16_t* skd_u16(skd_args* a, size_t i, size_t min_length);
int64_t skd_int(skd_args* a, size_t i);
double skd_num(skd_args* a, size_t i);
bool skd_bool(skd_args* a, size_t i);
/** Records `message` (printf-style) as the failure unless one is already recorded. */
void skd_fail(skd_args* a, const char* format, ...);
/** Throws the recorded failure, if any; true when the arguments are fine. */
bool skd_args_ok(skd_args* a);
napi_value skd_int_result(napi_env env, int64_t value);

// ---- matrix products (gemm.c) ----------------------------------------------------------------
// Row-major C (M x N, ldc) = alpha op(A) op(B) + beta C, op(A) M x K, op(B) K x N.
// skd_sgemm_1t runs on the calling thread only (inside parallel regions); skd_sgemm splits the
// product across the thread pool when it is large enough and not already in a parallel region.
/** out[r, :] += bias for every row (rows x n), across the pool when large. */
void skd_add_bias(float* out, const float* bias, int64_t rows, int64_t n);

void skd_sgemm_1t(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float beta, float* C, int64_t ldc);
void skd_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
               int64_t ldb, float beta, float* C, int64_t ldc);
const char* skd_blas_name(void);

// ---- threads (threads.c) ---------------------------------------------------------------------
int skd_threads(void);
/**
 * fn(ctx, from, to) over [0, n): one contiguous block per thread of the pool when `parallel`, else
 * inline on the calling thread. (An OpenMP region costs ~4 us even when its `if` clause makes it run
 * one thread, more than a small kernel's whole work: small work never enters one.) Blocks depend
 * only on n and the pool size, so results are deterministic for a pool size.
 */
void skd_for(int64_t n, bool parallel, void (*fn)(void* ctx, int64_t from, int64_t to), void* ctx);
/** fn(ctx, task, thread) for every task in [0, n), dynamically scheduled when `parallel`; `thread` < skd_threads() indexes per-thread scratch. */
void skd_for_tasks(int64_t n, bool parallel, void (*fn)(void* ctx, int64_t task, int thread), void* ctx);
/** out[j] = sum over rows of x[r][j], deterministic for a given pool size (blocks added in order); -1 when out of memory. */
int skd_column_sums(const float* x, int64_t rows, int64_t n, float* out);
// Work below these sizes stays on the calling thread: waking the pool's other thread costs microseconds
// at best and, on a machine whose second core is shared, hundreds of them at worst (measured here:
// a decode step's small kernels took 5-40x longer when each woke the pool).
#define SKD_PARALLEL_ELEMENTS (1 << 18)
#define SKD_PARALLEL_MACS (1 << 22)
void skd_blas_single_threaded(void);

// ---- math helpers ----------------------------------------------------------------------------
// exp as 2^n * p(r), n = round(x / ln 2), r = x - n ln 2 split in two parts (Cody-Waite), p a
// degree-6 Taylor polynomial (relative error < 2e-7 for |r| <= ln2 / 2). Below -87.3 the result is
// 0 (exp(-inf) included), above 88.7 it is +inf, NaN stays NaN. Arithmetic, selects and bit moves
// only, so GCC vectorises loops over it (with -fno-trapping-math) and no -ffast-math is needed,
// whose finite-math assumption could turn a NaN from a diverging run into a plausible number.
static inline float skd_exp(float x) {
  const float xc = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (xc - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  const float e = p * scale;
  return x < -87.3f ? 0.0f : (x > 88.7f ? INFINITY : e);
}

/** tanh through skd_exp, clamped where float32 tanh is already +-1; NaN stays NaN. */
static inline float skd_tanh(float x) {
  const float v = x > 15.0f ? 15.0f : (x < -15.0f ? -15.0f : x);
  const float t = 1.0f - 2.0f / (skd_exp(2.0f * v) + 1.0f);
  return x != x ? x : t;
}

#define SKD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SKD_MAX(a, b) ((a) > (b) ? (a) : (b))

// Reductions in eight lanes (GCC vector extensions: AVX on x86, two NEON registers on ARM). A plain
// `sum += x[i]` loop stays scalar without -ffast-math, whose reassociation these do explicitly;
// the lane order is fixed, so results are deterministic.
typedef float skd_v8 __attribute__((vector_size(32)));

static inline skd_v8 skd_load8(const float* p) {
  skd_v8 v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline float skd_hsum8(skd_v8 v) { return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])); }

static inline float skd_sum(const float* x, int64_t n) {
  skd_v8 acc = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc += skd_load8(x + i);
  float s = skd_hsum8(acc);
  for (; i < n; i++) s += x[i];
  return s;
}

static inline float skd_dot(const float* a, const float* b, int64_t n) {
  skd_v8 acc = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc += skd_load8(a + i) * skd_load8(b + i);
  float s = skd_hsum8(acc);
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

/** Sum of (x[i] - shift)^2. */
static inline float skd_sum_squares(const float* x, int64_t n, float shift) {
  skd_v8 acc = {0, 0, 0, 0, 0, 0, 0, 0};
  const skd_v8 c = {shift, shift, shift, shift, shift, shift, shift, shift};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const skd_v8 d = skd_load8(x + i) - c;
    acc += d * d;
  }
  float s = skd_hsum8(acc);
  for (; i < n; i++) s += (x[i] - shift) * (x[i] - shift);
  return s;
}

/** Sum of exp(x[i] - shift): exponentials a vectorised chunk at a time, then summed in lanes. */
static inline float skd_sum_exp(const float* x, int64_t n, float shift) {
  float chunk[256];
  float total = 0;
  for (int64_t i = 0; i < n; i += 256) {
    const int64_t m = SKD_MIN(256, n - i);
    for (int64_t j = 0; j < m; j++) chunk[j] = skd_exp(x[i + j] - shift);
    total += skd_sum(chunk, m);
  }
  return total;
}

/** Largest entry (NaN entries ignored, as `x > max` never holds for them). */
static inline float skd_max(const float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

/** log sum exp(x[i]) of one row; -inf for a row without mass, NaN when it holds a NaN. */
static inline float skd_log_sum_exp(const float* x, int64_t n) {
  const float mx = skd_max(x, n);
  if (mx == -INFINITY || mx != mx) return mx;
  // A NaN entry is skipped by the max but not by the sum, so it still makes the result NaN.
  return mx + logf(skd_sum_exp(x, n, mx));
}

// ---- building blocks shared by the kernels and the fused decode (gpt_decode.c) ----------------
void skd_layer_norm_rows(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd, int64_t rows, int64_t width, float eps);
/** out = residual + x w + bias (bias, residual may be NULL; residual may be out itself). */
void skd_linear_rows(const float* x, const float* w, const float* bias, const float* residual, float* out, int64_t rows, int64_t n_in, int64_t n_out);
void skd_gelu_rows(const float* x, float* out, int64_t n);
/** The heads of an attention: H query heads sharing Hkv key/value heads, scores scaled and optionally soft-capped and windowed (0: off). */
typedef struct {
  int64_t H, Hkv, dh;
  float scale, softcap;
  int64_t window;
} skd_attention_shape;
/** Attention of S new tokens per row over the KV cache (see cached_attention.c); false when out of memory. */
bool skd_cached_attention_core(const float* qkv, float* keys, float* values, const int32_t* lengths, const float* mask, float* out, int64_t B,
                               int64_t S, const skd_attention_shape* shape, int64_t cap);
/** Fails `a` unless every row's new real tokens fit in its cache (lengths, mask (B*S) or NULL). */
void skd_check_cache_room(skd_args* a, const int32_t* lengths, const float* mask, int64_t B, int64_t S, int64_t cap);
/**
 * The token a logit row gives for uniform draw u (chooseTokenWith in @skd/ops, reproduced exactly):
 * the argmax when greedy, else the categorical draw from the warped distribution. Returns -2 for a
 * NaN or +inf logit, -3 when every logit is -inf. Scratch: probs (width doubles), order
 * (skd_rank_scratch_bytes), keep (width bytes).
 */
int32_t skd_choose_token(const float* x, int64_t width, double u, double temperature, int64_t top_k, double top_p, bool greedy, double* probs,
                         void* order, unsigned char* keep);
size_t skd_rank_scratch_bytes(int64_t width);
/** Rng.random() of @skd/core on its four-word state (xoshiro128**), advancing it. */
double skd_rng_random(uint32_t state[4]);
/** Rotary positions on the q and k parts of packed rows (rows, 3 * H * dh), in place. */
void skd_rotary_rows(float* qkv, const int32_t* positions, int64_t rows, int64_t H, int64_t dh, float base);

// ---- N-API entry points (one group per file) -------------------------------------------------
napi_value skd_napi_sgemm_batch(napi_env env, napi_callback_info info);
napi_value skd_napi_set_threads(napi_env env, napi_callback_info info);
napi_value skd_napi_blas(napi_env env, napi_callback_info info);
napi_value skd_napi_bias_activation(napi_env env, napi_callback_info info);
napi_value skd_napi_unary(napi_env env, napi_callback_info info);
napi_value skd_napi_gelu(napi_env env, napi_callback_info info);
napi_value skd_napi_add_same(napi_env env, napi_callback_info info);
napi_value skd_napi_transpose_last2(napi_env env, napi_callback_info info);
napi_value skd_napi_gelu_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_sum_middle(napi_env env, napi_callback_info info);
napi_value skd_napi_gather_rows(napi_env env, napi_callback_info info);
napi_value skd_napi_unsorted_segment_sum(napi_env env, napi_callback_info info);
napi_value skd_napi_linear(napi_env env, napi_callback_info info);
napi_value skd_napi_linear_half(napi_env env, napi_callback_info info);
napi_value skd_napi_gather_half(napi_env env, napi_callback_info info);
napi_value skd_napi_widen_half(napi_env env, napi_callback_info info);
napi_value skd_napi_linear_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_layer_norm(napi_env env, napi_callback_info info);
napi_value skd_napi_layer_norm_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_rms_norm(napi_env env, napi_callback_info info);
napi_value skd_napi_rms_norm_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_rotary(napi_env env, napi_callback_info info);
napi_value skd_napi_gated_activation(napi_env env, napi_callback_info info);
napi_value skd_napi_gated_activation_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_attention(napi_env env, napi_callback_info info);
napi_value skd_napi_attention_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_cached_attention(napi_env env, napi_callback_info info);
napi_value skd_napi_log_softmax(napi_env env, napi_callback_info info);
napi_value skd_napi_log_softmax_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_cross_entropy(napi_env env, napi_callback_info info);
napi_value skd_napi_cross_entropy_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_forward_kl(napi_env env, napi_callback_info info);
napi_value skd_napi_forward_kl_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_mixture_kl(napi_env env, napi_callback_info info);
napi_value skd_napi_mixture_kl_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_adamw(napi_env env, napi_callback_info info);
napi_value skd_napi_sample_tokens(napi_env env, napi_callback_info info);
napi_value skd_napi_gpt_decode(napi_env env, napi_callback_info info);
napi_value skd_napi_gpt_generate(napi_env env, napi_callback_info info);

#endif
