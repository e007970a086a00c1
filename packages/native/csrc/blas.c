// The BLAS skd was built against: its name, and keeping it single-threaded (skd's own pool splits
// the work; see threads.c). Needs nothing else of skd's, so the pool and the products both use it.
#include "common.h"

#if defined(SKD_BLAS_DNNL)
const char* skd_blas_name(void) { return "oneDNN"; }
#elif defined(SKD_BLAS_OPENBLAS)
extern void openblas_set_num_threads(int num_threads);
const char* skd_blas_name(void) { return "OpenBLAS"; }
#else
#error "build with SKD_BLAS_DNNL or SKD_BLAS_OPENBLAS (see scripts/blas-flags.cjs)"
#endif

void skd_blas_single_threaded(void) {
#if defined(SKD_BLAS_OPENBLAS)
  openblas_set_num_threads(1);
#endif
}

// blas(): the name of the BLAS the addon was built against.
napi_value skd_napi_blas(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result = NULL;
  napi_create_string_utf8(env, skd_blas_name(), NAPI_AUTO_LENGTH, &result);
  return result;
}
