// One OpenMP thread pool for every kernel (oneDNN uses the same libgomp runtime); the BLAS itself
// is kept single-threaded. SKD_THREADS or setThreads choose the pool size (default: all cores).
#include "common.h"
#include <omp.h>
#include <stdlib.h>

static int pool_size = 0;

int skd_threads(void) {
  if (pool_size <= 0) {
    const char* env = getenv("SKD_THREADS");
    const int wanted = env ? atoi(env) : 0;
    pool_size = wanted > 0 ? wanted : omp_get_num_procs();
  }
  return pool_size;
}

void skd_for(int64_t n, bool parallel, void (*fn)(void* ctx, int64_t from, int64_t to), void* ctx) {
  const int threads = skd_threads();
  if (!parallel || threads <= 1 || n < 2 || omp_in_parallel()) {
    if (n > 0) fn(ctx, 0, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t from = n * t / nt, to = n * (t + 1) / nt;
    if (to > from) fn(ctx, from, to);
  }
}

void skd_for_tasks(int64_t n, bool parallel, void (*fn)(void* ctx, int64_t task, int thread), void* ctx) {
  const int threads = skd_threads();
  if (!parallel || threads <= 1 || n < 2 || omp_in_parallel()) {
    for (int64_t i = 0; i < n; i++) fn(ctx, i, 0);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
#pragma omp for schedule(dynamic)
    for (int64_t i = 0; i < n; i++) fn(ctx, i, t);
  }
}

// setThreads(n): n >= 1 sets the pool size, 0 keeps it; returns the size in use.
napi_value skd_napi_set_threads(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "setThreads", 1);
  const int64_t n = skd_int(&a, 0);
  if (n < 0) skd_fail(&a, "threads must be >= 0, got %lld", (long long)n);
  if (!skd_args_ok(&a)) return NULL;
  if (n >= 1) pool_size = (int)n;
  omp_set_num_threads(skd_threads());
  skd_blas_single_threaded();
  return skd_int_result(env, skd_threads());
}
