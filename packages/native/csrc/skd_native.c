// The addon's entry point: registers every kernel. Each group of kernels lives in its own file.
#include "common.h"
#include <signal.h>

// oneDNN's JIT sgemm points the stack pointer into heap memory while it runs, so a signal handled on
// a thread inside it writes its frame over the heap (uxlfoundation/oneDNN#4845): a Ctrl-C, a child
// exiting or a profiler tick then corrupts memory. Every kernel therefore runs with asynchronous
// signals blocked on the calling thread; they are delivered when it returns. The pool's worker
// threads are created inside such a call, so they inherit the blocked mask for good.
static void block_signals(sigset_t* previous) {
  sigset_t all;
  sigfillset(&all);
  const int synchronous[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
  for (size_t i = 0; i < sizeof synchronous / sizeof synchronous[0]; i++) sigdelset(&all, synchronous[i]);
  pthread_sigmask(SIG_BLOCK, &all, previous);
}

#define GUARDED(name)                                                       \
  static napi_value guarded_##name(napi_env env, napi_callback_info info) { \
    sigset_t previous;                                                      \
    block_signals(&previous);                                               \
    napi_value result = skd_napi_##name(env, info);                         \
    pthread_sigmask(SIG_SETMASK, &previous, NULL);                          \
    return result;                                                          \
  }

GUARDED(sgemm_batch)
GUARDED(set_threads)
GUARDED(blas)
GUARDED(bias_activation)
GUARDED(unary)
GUARDED(gelu)
GUARDED(gelu_grad)
GUARDED(sum_middle)
GUARDED(gather_rows)
GUARDED(unsorted_segment_sum)
GUARDED(layer_norm)
GUARDED(layer_norm_grad)
GUARDED(attention)
GUARDED(attention_grad)
GUARDED(cached_attention)
GUARDED(log_softmax)
GUARDED(log_softmax_grad)
GUARDED(cross_entropy)
GUARDED(cross_entropy_grad)
GUARDED(adamw)
GUARDED(sample_tokens)

static napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"sgemmBatch", NULL, guarded_sgemm_batch, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, guarded_set_threads, NULL, NULL, NULL, napi_default, NULL},
      {"blas", NULL, guarded_blas, NULL, NULL, NULL, napi_default, NULL},
      {"biasActivation", NULL, guarded_bias_activation, NULL, NULL, NULL, napi_default, NULL},
      {"unary", NULL, guarded_unary, NULL, NULL, NULL, napi_default, NULL},
      {"gelu", NULL, guarded_gelu, NULL, NULL, NULL, napi_default, NULL},
      {"geluGrad", NULL, guarded_gelu_grad, NULL, NULL, NULL, napi_default, NULL},
      {"sumMiddle", NULL, guarded_sum_middle, NULL, NULL, NULL, napi_default, NULL},
      {"gatherRows", NULL, guarded_gather_rows, NULL, NULL, NULL, napi_default, NULL},
      {"unsortedSegmentSum", NULL, guarded_unsorted_segment_sum, NULL, NULL, NULL, napi_default, NULL},
      {"layerNorm", NULL, guarded_layer_norm, NULL, NULL, NULL, napi_default, NULL},
      {"layerNormGrad", NULL, guarded_layer_norm_grad, NULL, NULL, NULL, napi_default, NULL},
      {"attention", NULL, guarded_attention, NULL, NULL, NULL, napi_default, NULL},
      {"attentionGrad", NULL, guarded_attention_grad, NULL, NULL, NULL, napi_default, NULL},
      {"cachedAttention", NULL, guarded_cached_attention, NULL, NULL, NULL, napi_default, NULL},
      {"logSoftmax", NULL, guarded_log_softmax, NULL, NULL, NULL, napi_default, NULL},
      {"logSoftmaxGrad", NULL, guarded_log_softmax_grad, NULL, NULL, NULL, napi_default, NULL},
      {"crossEntropy", NULL, guarded_cross_entropy, NULL, NULL, NULL, napi_default, NULL},
      {"crossEntropyGrad", NULL, guarded_cross_entropy_grad, NULL, NULL, NULL, napi_default, NULL},
      {"adamw", NULL, guarded_adamw, NULL, NULL, NULL, napi_default, NULL},
      {"sampleTokens", NULL, guarded_sample_tokens, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  skd_blas_single_threaded();
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
