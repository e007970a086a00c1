// Products against frozen weights held in 16 bits (bfloat16 or IEEE half): a teacher's, or a LoRA
// student's base. The weights are widened to float32 as they are read and multiplied in float32, so
// activations are never rounded and sums accumulate in float32: the result is the float32 product
// with the 16-bit values, to the order of summation. A decode step reads half the bytes a float32
// weight costs (it is bound by those reads).
// - W stored (n_out, n_in), a checkpoint's linear layers and an output head tied to its embedding
//   (every forward): dot products in a register tile, W widened in registers (dot_tile).
// - W stored (n_in, n_out) (the backward through a LoRA base): up to SMALL_ROWS rows in registers,
//   more through the BLAS, a float32 tile of W widened at a time in a buffer of the calling thread.
#include "common.h"
#include <immintrin.h>
#include <stdlib.h>

enum { SKD_BF16 = 0, SKD_F16 = 1 };

// Tile extents: a (KB x NB) float32 tile is 128 KiB, resident in L2 while the BLAS reads it.
#define KB 256
#define NB 128
#define MID_ROWS 64

static inline float bf16_value(uint16_t h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static inline float f16_value(uint16_t h) {
  _Float16 v;
  memcpy(&v, &h, sizeof v);
  return (float)v;
}

typedef float skd_v16 __attribute__((vector_size(64)));
typedef uint16_t skd_u16x16 __attribute__((vector_size(32)));
typedef uint32_t skd_u32x16 __attribute__((vector_size(64)));

/** 16 consecutive 16-bit values at p, widened. */
static inline __attribute__((always_inline)) skd_v16 widen16(const uint16_t* p, int kind) {
  if (kind == SKD_BF16) {
    skd_u16x16 h;
    memcpy(&h, p, sizeof h);
    const skd_u32x16 bits = __builtin_convertvector(h, skd_u32x16) << 16;
    skd_v16 f;
    memcpy(&f, &bits, sizeof f);
    return f;
  }
  skd_v16 f;
#if defined(__AVX512F__)
  const __m512 v = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p));
  memcpy(&f, &v, sizeof f);
#elif defined(__F16C__)
  const __m256 lo = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)), hi = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(p + 8)));
  memcpy(&f, &lo, sizeof lo);
  memcpy((float*)&f + 8, &hi, sizeof hi);
#else
  // GCC lowers a vector conversion from _Float16 one element at a time anyway.
  for (int i = 0; i < 16; i++) f[i] = f16_value(p[i]);
#endif
  return f;
}

/** dst (rows x cols, contiguous) = the 16-bit block at src with row stride ld, widened. */
static void widen_block(const uint16_t* src, int64_t ld, int64_t rows, int64_t cols, int kind, float* dst) {
  for (int64_t r = 0; r < rows; r++) {
    const uint16_t* s = src + r * ld;
    float* d = dst + r * cols;
    int64_t j = 0;
    for (; j + 16 <= cols; j += 16) {
      const skd_v16 v = widen16(s + j, kind);
      memcpy(d + j, &v, sizeof v);
    }
    for (; j < cols; j++) d[j] = kind == SKD_BF16 ? bf16_value(s[j]) : f16_value(s[j]);
  }
}

// A few rows (decode steps) are bound by reading the weights: they are read once, 16 bits at a time,
// straight into float32 registers, with every row's sums kept in registers (up to SMALL_ROWS rows).
#define SMALL_ROWS 8
static inline skd_v16 splat16(float v) { return (skd_v16){v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v}; }

static inline float hsum16(skd_v16 v) {
  float s = 0;
  for (int i = 0; i < 16; i++) s += v[i];
  return s;
}

static inline float widen1(uint16_t h, int kind) { return kind == SKD_BF16 ? bf16_value(h) : f16_value(h); }

// out[m, j] += sum_k x[m, k] W[k, j] for j in [from, to), W stored (n_in, n_out): 32 columns at a time
// (two vectors per row), streaming W's rows.
static inline __attribute__((always_inline)) void small_columns(const float* x, const uint16_t* w, int kind, float* out, int mr, int64_t n_in,
                                                                int64_t n_out, int64_t from, int64_t to) {
  int64_t j = from;
  for (; j + 32 <= to; j += 32) {
    skd_v16 acc[SMALL_ROWS][2];
    for (int m = 0; m < mr; m++) acc[m][0] = acc[m][1] = splat16(0);
    for (int64_t k = 0; k < n_in; k++) {
      const skd_v16 w0 = widen16(w + k * n_out + j, kind), w1 = widen16(w + k * n_out + j + 16, kind);
      for (int m = 0; m < mr; m++) {
        const skd_v16 xk = splat16(x[m * n_in + k]);
        acc[m][0] += xk * w0;
        acc[m][1] += xk * w1;
      }
    }
    for (int m = 0; m < mr; m++)
      for (int i = 0; i < 16; i++) {
        out[m * n_out + j + i] += acc[m][0][i];
        out[m * n_out + j + 16 + i] += acc[m][1][i];
      }
  }
  for (; j < to; j++)
    for (int m = 0; m < mr; m++) {
      float sum = 0;
      for (int64_t k = 0; k < n_in; k++) sum += x[m * n_in + k] * widen1(w[k * n_out + j], kind);
      out[m * n_out + j] += sum;
    }
}

// One product's operands, for the paths that need nothing else (the few-rows one and the dot products).
typedef struct {
  const float* x;
  const uint16_t* w;
  float* out;
  int64_t rows, n_in, n_out;
  int kind;
} product_ctx;

#define SMALL_CASE(R)                                                                                    \
  case R:                                                                                                \
    small_columns(k->x, k->w, k->kind, k->out, R, k->n_in, k->n_out, from, to);                        \
    break;

// Output columns [from, to) (whole 32-column strips) for every row.
static void small_part(void* ctx, int64_t from, int64_t to) {
  const product_ctx* k = ctx;
  switch (k->rows) {
    SMALL_CASE(1)
    SMALL_CASE(2)
    SMALL_CASE(3)
    SMALL_CASE(4)
    SMALL_CASE(5)
    SMALL_CASE(6)
    SMALL_CASE(7)
    SMALL_CASE(8)
    default:
      break;
  }
}

// skd_for hands out blocks of 32-column strips; this turns them into column ranges.
static void small_strips(void* ctx, int64_t from, int64_t to) {
  const product_ctx* k = ctx;
  small_part(ctx, from * 32, SKD_MIN(k->n_out, to * 32));
}

// Weights stored (n_out, n_in), the layout of a checkpoint's linear layers: out[m, n] is the dot
// product of x's row m with W's row n, both contiguous along k. A register tile of DOT_MR rows of x
// by DOT_NR rows of W keeps a vector of partial sums each; each W vector is widened once per step and
// used for every row, each x vector for every W row, so no widened copy of W is ever written and
// no BLAS call (with its own packing of both operands, per tile) is made. The partial sums are
// added up across lanes once per output, at the end of k.
#if defined(__AVX512F__)
// Thirty-two registers: a 4 x 6 tile's sums, W's six vectors and one of x.
#define DOT_MR 4
#define DOT_NR 6
typedef __m512 dot_vec;
#define DOT_LANES 16
#define dot_zero() _mm512_setzero_ps()
#define dot_load(p) _mm512_loadu_ps(p)
#define dot_fma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define dot_sum(v) _mm512_reduce_add_ps(v)
static inline __attribute__((always_inline)) dot_vec dot_widen(const uint16_t* p, int kind) {
  const __m256i h = _mm256_loadu_si256((const __m256i*)p);
  return kind == SKD_BF16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
}
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
// Sixteen 8-lane registers: a 2 x 4 tile's sums, W's four vectors and one of x.
#define DOT_MR 2
#define DOT_NR 4
typedef __m256 dot_vec;
#define DOT_LANES 8
#define dot_zero() _mm256_setzero_ps()
#define dot_load(p) _mm256_loadu_ps(p)
#define dot_fma(a, b, c) _mm256_fmadd_ps(a, b, c)
static inline float dot_sum(__m256 v) {
  const __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 b = _mm_add_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_add_ss(b, _mm_movehdup_ps(b)));
}
static inline __attribute__((always_inline)) dot_vec dot_widen(const uint16_t* p, int kind) {
  const __m128i h = _mm_loadu_si128((const __m128i*)p);
  return kind == SKD_BF16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)) : _mm256_cvtph_ps(h);
}
#else
#define DOT_MR 2
#define DOT_NR 2
typedef skd_v16 dot_vec;
#define DOT_LANES 16
#define dot_zero() splat16(0)
static inline dot_vec dot_load(const float* p) {
  dot_vec v;
  memcpy(&v, p, sizeof v);
  return v;
}
#define dot_fma(a, b, c) ((a) * (b) + (c))
#define dot_sum(v) hsum16(v)
#define dot_widen(p, kind) widen16(p, kind)
#endif
// Columns per unit of work: blocks whose W rows (for a 960-deep layer, up to 230 KB in 16 bits)
// stay in L2 while every row of x passes over them.
#define DOT_NC (DOT_NR * 20)

static inline __attribute__((always_inline)) void dot_tile(const float* x, const uint16_t* w, float* out, int64_t n_in, int64_t n_out, int kind,
                                                           int mr, int nr) {
  dot_vec acc[DOT_MR][DOT_NR];
  for (int m = 0; m < mr; m++)
    for (int n = 0; n < nr; n++) acc[m][n] = dot_zero();
  int64_t k = 0;
  for (; k + DOT_LANES <= n_in; k += DOT_LANES) {
    dot_vec wk[DOT_NR];
    for (int n = 0; n < nr; n++) wk[n] = dot_widen(w + n * n_in + k, kind);
    for (int m = 0; m < mr; m++) {
      dot_vec xk = dot_load(x + m * n_in + k);
#if defined(__AVX2__)
      // One load of x per row and step, kept in a register (else each product reloads it).
      __asm__("" : "+v"(xk));
#endif
      for (int n = 0; n < nr; n++) acc[m][n] = dot_fma(xk, wk[n], acc[m][n]);
    }
  }
  for (int m = 0; m < mr; m++)
    for (int n = 0; n < nr; n++) {
      float sum = dot_sum(acc[m][n]);
      for (int64_t kk = k; kk < n_in; kk++) sum += x[m * n_in + kk] * widen1(w[n * n_in + kk], kind);
      out[m * n_out + n] += sum;
    }
}

// One instance per tile shape and format, so the compiler keeps every partial sum in a register.
#define DOT_CASE(MR, NR)                                                                                            \
  case (MR) * 8 + (NR):                                                                                            \
    if (kind == SKD_BF16) dot_tile(x, w, out, n_in, n_out, SKD_BF16, MR, NR);                                      \
    else dot_tile(x, w, out, n_in, n_out, SKD_F16, MR, NR);                                                         \
    break;

static void dot_any(const float* x, const uint16_t* w, float* out, int64_t n_in, int64_t n_out, int kind, int mr, int nr) {
  switch (mr * 8 + nr) {
#if DOT_MR >= 1 && DOT_NR >= 1
    DOT_CASE(1, 1)
#endif
#if DOT_MR >= 1 && DOT_NR >= 2
    DOT_CASE(1, 2)
#endif
#if DOT_MR >= 1 && DOT_NR >= 3
    DOT_CASE(1, 3)
#endif
#if DOT_MR >= 1 && DOT_NR >= 4
    DOT_CASE(1, 4)
#endif
#if DOT_MR >= 1 && DOT_NR >= 5
    DOT_CASE(1, 5)
#endif
#if DOT_MR >= 1 && DOT_NR >= 6
    DOT_CASE(1, 6)
#endif
#if DOT_MR >= 2 && DOT_NR >= 1
    DOT_CASE(2, 1)
#endif
#if DOT_MR >= 2 && DOT_NR >= 2
    DOT_CASE(2, 2)
#endif
#if DOT_MR >= 2 && DOT_NR >= 3
    DOT_CASE(2, 3)
#endif
#if DOT_MR >= 2 && DOT_NR >= 4
    DOT_CASE(2, 4)
#endif
#if DOT_MR >= 2 && DOT_NR >= 5
    DOT_CASE(2, 5)
#endif
#if DOT_MR >= 2 && DOT_NR >= 6
    DOT_CASE(2, 6)
#endif
#if DOT_MR >= 3 && DOT_NR >= 1
    DOT_CASE(3, 1)
#endif
#if DOT_MR >= 3 && DOT_NR >= 2
    DOT_CASE(3, 2)
#endif
#if DOT_MR >= 3 && DOT_NR >= 3
    DOT_CASE(3, 3)
#endif
#if DOT_MR >= 3 && DOT_NR >= 4
    DOT_CASE(3, 4)
#endif
#if DOT_MR >= 3 && DOT_NR >= 5
    DOT_CASE(3, 5)
#endif
#if DOT_MR >= 3 && DOT_NR >= 6
    DOT_CASE(3, 6)
#endif
#if DOT_MR >= 4 && DOT_NR >= 1
    DOT_CASE(4, 1)
#endif
#if DOT_MR >= 4 && DOT_NR >= 2
    DOT_CASE(4, 2)
#endif
#if DOT_MR >= 4 && DOT_NR >= 3
    DOT_CASE(4, 3)
#endif
#if DOT_MR >= 4 && DOT_NR >= 4
    DOT_CASE(4, 4)
#endif
#if DOT_MR >= 4 && DOT_NR >= 5
    DOT_CASE(4, 5)
#endif
#if DOT_MR >= 4 && DOT_NR >= 6
    DOT_CASE(4, 6)
#endif
    default:
      break;
  }
}

// Output columns [from * DOT_NC, to * DOT_NC) for every row: a column block at a time, every row
// of x passing over it, DOT_MR rows by DOT_NR columns per tile.
static void dot_columns(void* ctx, int64_t from, int64_t to) {
  const product_ctx* k = ctx;
  for (int64_t c = from; c < to; c++) {
    const int64_t n_end = SKD_MIN(k->n_out, (c + 1) * DOT_NC);
    for (int64_t m0 = 0; m0 < k->rows; m0 += DOT_MR) {
      const int mr = (int)SKD_MIN(DOT_MR, k->rows - m0);
      for (int64_t n0 = c * DOT_NC; n0 < n_end; n0 += DOT_NR) {
        const int nr = (int)SKD_MIN(DOT_NR, n_end - n0);
        dot_any(k->x + m0 * k->n_in, k->w + n0 * k->n_in, k->out + m0 * k->n_out + n0, k->n_in, k->n_out, k->kind, mr, nr);
      }
    }
  }
}

typedef struct {
  const float* x;
  const uint16_t* w;
  float* out;
  float* tiles;  // one kb x NB tile per thread
  int64_t rows, n_in, n_out, kb;
  int kind;
} half_ctx;

// Columns [n0, n0 + NB) of out += x W[:, n0 ..] (W stored (n_in, n_out)), a KB-deep slice of W at a time.
static void half_columns(void* ctx, int64_t task, int thread) {
  const half_ctx* k = ctx;
  const int64_t n0 = task * NB, nb = SKD_MIN(NB, k->n_out - n0);
  float* tile = k->tiles + (int64_t)thread * k->kb * NB;
  for (int64_t k0 = 0; k0 < k->n_in; k0 += k->kb) {
    const int64_t kb = SKD_MIN(k->kb, k->n_in - k0);
    widen_block(k->w + k0 * k->n_out + n0, k->n_out, kb, nb, k->kind, tile);
    skd_sgemm_1t(false, false, k->rows, nb, kb, 1.0f, k->x + k0, k->n_in, tile, nb, 1.0f, k->out + n0, k->n_out);
  }
}

/** out = residual + x op(W) + bias; op(W) is W (stored n_in x n_out) or, when trans, Wᵀ (stored n_out x n_in). 0, or -1 out of memory. */
int skd_linear_half(const float* x, const uint16_t* w, int kind, bool trans, const float* bias, const float* residual, float* out, int64_t rows,
                    int64_t n_in, int64_t n_out) {
  if (residual) {
    if (residual != out) memcpy(out, residual, sizeof(float) * (size_t)(rows * n_out));
  } else {
    memset(out, 0, sizeof(float) * (size_t)(rows * n_out));
  }
  // As for float32 weights (gemm.c): a few rows against a large matrix are bound by reading it.
  const bool parallel = skd_threads() > 1 && (rows * n_in * n_out >= SKD_PARALLEL_MACS || n_in * n_out >= (1 << 17));
  if (rows > 0 && trans) {
    product_ctx k = {x, w, out, rows, n_in, n_out, kind};
    skd_for((n_out + DOT_NC - 1) / DOT_NC, parallel, dot_columns, &k);
  } else if (rows > 0 && rows <= SMALL_ROWS) {
    product_ctx k = {x, w, out, rows, n_in, n_out, kind};
    skd_for((n_out + 31) / 32, skd_threads() > 1 && n_in * n_out >= (1 << 17), small_strips, &k);
  } else if (rows > 0) {
    const int threads = skd_threads();
    // Few rows make each product small, so a call per 256-deep tile costs more in the BLAS's own
    // overhead than in arithmetic: up to MID_ROWS rows take a column panel's whole depth at once.
    const int64_t kb = rows <= MID_ROWS ? n_in : KB;
    float* tiles = malloc(sizeof(float) * (size_t)kb * NB * (size_t)(parallel ? threads : 1));
    if (!tiles) return -1;
    half_ctx k = {x, w, out, tiles, rows, n_in, n_out, kb, kind};
    skd_for_tasks((n_out + NB - 1) / NB, parallel, half_columns, &k);
    free(tiles);
  }
  if (bias) skd_add_bias(out, bias, rows, n_out);
  return 0;
}

static int half_kind(skd_args* a, size_t i) {
  const int64_t kind = skd_int(a, i);
  if (kind != SKD_BF16 && kind != SKD_F16) skd_fail(a, "kind must be 0 (bfloat16) or 1 (float16), got %lld", (long long)kind);
  return (int)kind;
}

// linearHalf(x, w, kind, trans, bias, residual, out, rows, inputs, outputs): out = residual + x op(w) + bias
// with w 16-bit (kind 0 bfloat16, 1 float16), stored (inputs, outputs), or (outputs, inputs) when trans.
napi_value skd_napi_linear_half(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "linearHalf", 10);
  const int64_t rows = skd_int(&a, 7), n_in = skd_int(&a, 8), n_out = skd_int(&a, 9);
  if (rows < 0 || n_in <= 0 || n_out <= 0) skd_fail(&a, "bad shape (%lld, %lld) -> %lld", (long long)rows, (long long)n_in, (long long)n_out);
  const float* x = skd_f32(&a, 0, (size_t)(rows * n_in));
  const uint16_t* w = skd_u16(&a, 1, (size_t)(n_in * n_out));
  const int kind = half_kind(&a, 2);
  const bool trans = skd_bool(&a, 3);
  const float* bias = skd_f32_or_null(&a, 4, (size_t)n_out);
  const float* residual = skd_f32_or_null(&a, 5, (size_t)(rows * n_out));
  float* out = skd_f32(&a, 6, (size_t)(rows * n_out));
  if (!skd_args_ok(&a)) return NULL;
  if (skd_linear_half(x, w, kind, trans, bias, residual, out, rows, n_in, n_out) != 0) napi_throw_error(env, NULL, "skd-native linearHalf: out of memory");
  return NULL;
}

// gatherHalf(table, kind, indices, out, count, inner, rows): out[r, :] = table[indices[r], :] widened.
// Returns the position of the first out-of-range index, or -1 when all are valid.
napi_value skd_napi_gather_half(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "gatherHalf", 7);
  const int64_t count = skd_int(&a, 4), inner = skd_int(&a, 5), rows = skd_int(&a, 6);
  if (count < 0 || inner < 0 || rows < 0) skd_fail(&a, "negative dimension");
  const uint16_t* table = skd_u16(&a, 0, (size_t)(rows * inner));
  const int kind = half_kind(&a, 1);
  const int32_t* indices = skd_i32(&a, 2, (size_t)count);
  float* out = skd_f32(&a, 3, (size_t)(count * inner));
  if (!skd_args_ok(&a)) return NULL;
  for (int64_t r = 0; r < count; r++) {
    const int32_t k = indices[r];
    if (k < 0 || k >= rows) return skd_int_result(env, r);
    widen_block(table + (int64_t)k * inner, inner, 1, inner, kind, out + r * inner);
  }
  return skd_int_result(env, -1);
}

// widenHalf(src, kind, out, n): out[i] = src[i] as float32.
napi_value skd_napi_widen_half(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "widenHalf", 4);
  const int64_t n = skd_int(&a, 3);
  if (n < 0) skd_fail(&a, "negative length");
  const uint16_t* src = skd_u16(&a, 0, (size_t)n);
  const int kind = half_kind(&a, 1);
  float* out = skd_f32(&a, 2, (size_t)n);
  if (!skd_args_ok(&a)) return NULL;
  widen_block(src, n, 1, n, kind, out);
  return NULL;
}
