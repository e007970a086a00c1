// Matrix products through the BLAS found at build time (oneDNN's sgemm, else OpenBLAS's), always
// single-threaded inside the library: skd splits work across its one OpenMP pool itself, so the
// BLAS never starts threads of its own beside it (two pools on two cores slow both down).
#include "common.h"
#include <omp.h>

#if defined(SKD_BLAS_DNNL)
#include <dnnl.h>
#elif defined(SKD_BLAS_OPENBLAS)
#include <cblas.h>
#endif

void skd_sgemm_1t(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; i++) {
      float* row = C + i * ldc;
      if (beta == 0.0f) memset(row, 0, sizeof(float) * (size_t)N);
      else for (int64_t j = 0; j < N; j++) row[j] *= beta;
    }
    return;
  }
#if defined(SKD_BLAS_DNNL)
  // oneDNN's sgemm is row-major. Inside a parallel region it runs on the calling thread; outside
  // one it would open its own, and waking the pool costs more than a small product, so it is told
  // to stay on this thread (the thread count is this thread's setting, cheap to change).
  const bool outside = !omp_in_parallel();
  const int threads = outside ? omp_get_max_threads() : 1;
  if (outside && threads > 1) omp_set_num_threads(1);
  dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (outside && threads > 1) omp_set_num_threads(threads);
#else
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A, (int)lda, B,
              (int)ldb, beta, C, (int)ldc);
#endif
}

typedef struct {
  bool ta, tb, by_rows;
  int64_t M, N, K, lda, ldb, ldc, step;
  float alpha, beta;
  const float *A, *B;
  float* C;
} split_ctx;

// Chunk t of the longer of M and N (multiples of 16, the micro-kernels' width), so each thread packs
// only its own part of the other operand.
static void gemm_chunk(void* ctx, int64_t t, int thread) {
  (void)thread;
  const split_ctx* k = ctx;
  const int64_t extent = k->by_rows ? k->M : k->N;
  const int64_t from = SKD_MIN(extent, k->step * t), to = SKD_MIN(extent, k->step * (t + 1));
  if (to <= from) return;
  if (k->by_rows) {
    const float* a = k->ta ? k->A + from : k->A + from * k->lda;
    skd_sgemm_1t(k->ta, k->tb, to - from, k->N, k->K, k->alpha, a, k->lda, k->B, k->ldb, k->beta, k->C + from * k->ldc, k->ldc);
  } else {
    const float* b = k->tb ? k->B + from * k->ldb : k->B + from;
    skd_sgemm_1t(k->ta, k->tb, k->M, to - from, k->K, k->alpha, k->A, k->lda, b, k->ldb, k->beta, k->C + from, k->ldc);
  }
}

void skd_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
               int64_t ldb, float beta, float* C, int64_t ldc) {
  const int threads = skd_threads();
  // A few rows (decode steps) times a large weight matrix is bound by reading the weights: two
  // threads read twice as fast long before the product is big enough to split for its arithmetic.
  const bool weight_bound = M <= 16 && N * K >= (1 << 17);
  if (threads <= 1 || omp_in_parallel() || (M * N * K < SKD_PARALLEL_MACS && !weight_bound)) {
    skd_sgemm_1t(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const bool by_rows = M >= N;
  const int64_t extent = by_rows ? M : N;
  split_ctx k = {ta, tb, by_rows, M, N, K, lda, ldb, ldc, ((extent + threads - 1) / threads + 15) / 16 * 16, alpha, beta, A, B, C};
  skd_for_tasks(threads, true, gemm_chunk, &k);
}

typedef struct {
  bool ta, tb;
  int64_t M, N, K, lda, ldb;
  const float *A, *B;
  float* C;
  const int32_t *a_off, *b_off;
} batch_ctx;

static void gemm_one(void* ctx, int64_t i, int thread) {
  (void)thread;
  const batch_ctx* k = ctx;
  skd_sgemm_1t(k->ta, k->tb, k->M, k->N, k->K, 1.0f, k->A + k->a_off[i], k->lda, k->B + k->b_off[i], k->ldb, 0.0f, k->C + i * k->M * k->N, k->N);
}

// sgemmBatch(a, b, c, aOffsets, bOffsets, M, N, K, transposeA, transposeB)
// For each batch i: c[i*M*N ..] = op(a[aOffsets[i] ..]) @ op(b[bOffsets[i] ..]), row-major, op(a) M x K,
// op(b) K x N. Broadcasting is expressed by repeated offsets. Many small products (attention
// heads) run one per thread; a few large ones are each split across the pool.
napi_value skd_napi_sgemm_batch(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "sgemmBatch", 10);
  const int64_t M = skd_int(&a, 5), N = skd_int(&a, 6), K = skd_int(&a, 7);
  const bool ta = skd_bool(&a, 8), tb = skd_bool(&a, 9);
  if (M < 0 || N < 0 || K < 0) skd_fail(&a, "negative dimension M %lld N %lld K %lld", (long long)M, (long long)N, (long long)K);
  const float* A = skd_f32(&a, 0, 0);
  const float* B = skd_f32(&a, 1, 0);
  const int32_t* a_off = skd_i32(&a, 3, 0);
  const int32_t* b_off = skd_i32(&a, 4, 0);
  size_t batch = 0, b_batch = 0, a_len = 0, b_len = 0, ignore = 0;
  void* data;
  napi_typedarray_type type;
  napi_value buffer;
  if (a.error[0] == '\0') {
    napi_get_typedarray_info(env, a.argv[3], &type, &batch, &data, &buffer, &ignore);
    napi_get_typedarray_info(env, a.argv[4], &type, &b_batch, &data, &buffer, &ignore);
    napi_get_typedarray_info(env, a.argv[0], &type, &a_len, &data, &buffer, &ignore);
    napi_get_typedarray_info(env, a.argv[1], &type, &b_len, &data, &buffer, &ignore);
    if (batch != b_batch) skd_fail(&a, "offset arrays differ in length (%zu and %zu)", batch, b_batch);
  }
  float* C = skd_f32(&a, 2, batch * (size_t)(M * N));
  for (size_t i = 0; a.error[0] == '\0' && i < batch; i++) {
    if (a_off[i] < 0 || b_off[i] < 0 || (size_t)a_off[i] + (size_t)(M * K) > a_len || (size_t)b_off[i] + (size_t)(K * N) > b_len) {
      skd_fail(&a, "the input offsets of batch %zu are out of range", i);
    }
  }
  if (!skd_args_ok(&a)) return NULL;
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  if (batch > 1 && M * N * K < (1 << 21)) {
    batch_ctx k = {ta, tb, M, N, K, lda, ldb, A, B, C, a_off, b_off};
    skd_for_tasks((int64_t)batch, (int64_t)batch * M * N * K >= SKD_PARALLEL_MACS, gemm_one, &k);
  } else {
    for (size_t i = 0; i < batch; i++) skd_sgemm(ta, tb, M, N, K, 1.0f, A + a_off[i], lda, B + b_off[i], ldb, 0.0f, C + i * M * N, N);
  }
  return NULL;
}
