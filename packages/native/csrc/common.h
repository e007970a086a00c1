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
  napi_value argv[20];
  const char* fn;
  char error[240];
} skd_args;

bool skd_args_init(skd_args* a, napi_env env, napi_callback_info info, const char* fn, size_t expected);
float* skd_f32(skd_args* a, size_t i, size_t min_length);
float* skd_f32_or_null(skd_args* a, size_t i, size_t min_length);
int32_t* skd_i32(skd_args* a, size_t i, size_t min_length);
double* skd_f64(skd_args* a, size_t i, size_t min_length);
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
void skd_sgemm_1t(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float beta, float* C, int64_t ldc);
void skd_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
               int64_t ldb, float beta, float* C, int64_t ldc);
const char* skd_blas_name(void);

// ---- threads (threads.c) ---------------------------------------------------------------------
int skd_threads(void);
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

// ---- N-API entry points (one group per file) -------------------------------------------------
napi_value skd_napi_sgemm_batch(napi_env env, napi_callback_info info);
napi_value skd_napi_set_threads(napi_env env, napi_callback_info info);
napi_value skd_napi_blas(napi_env env, napi_callback_info info);
napi_value skd_napi_bias_activation(napi_env env, napi_callback_info info);
napi_value skd_napi_unary(napi_env env, napi_callback_info info);
napi_value skd_napi_gelu(napi_env env, napi_callback_info info);
napi_value skd_napi_gelu_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_sum_middle(napi_env env, napi_callback_info info);
napi_value skd_napi_gather_rows(napi_env env, napi_callback_info info);
napi_value skd_napi_unsorted_segment_sum(napi_env env, napi_callback_info info);
napi_value skd_napi_layer_norm(napi_env env, napi_callback_info info);
napi_value skd_napi_layer_norm_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_attention(napi_env env, napi_callback_info info);
napi_value skd_napi_attention_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_cached_attention(napi_env env, napi_callback_info info);
napi_value skd_napi_log_softmax(napi_env env, napi_callback_info info);
napi_value skd_napi_log_softmax_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_cross_entropy(napi_env env, napi_callback_info info);
napi_value skd_napi_cross_entropy_grad(napi_env env, napi_callback_info info);
napi_value skd_napi_adamw(napi_env env, napi_callback_info info);
napi_value skd_napi_sample_tokens(napi_env env, napi_callback_info info);

#endif
