// The addon's entry point: registers every kernel. Each group of kernels lives in its own file.
#include "common.h"
#include <signal.h>

// oneDNN's JIT sgemm points the stack pointer into heap memory while it runs, so a signal handled on
// a thread inside it writes its frame over the heap (uxlfoundation/oneDNN#4845): a Ctrl-C, a child
// exiting or a profiler tick then corrupts memory. Every kernel therefore runs with asynchronous
// signals blocked on the calling thread; they are delivered when it returns. The pool's worker
// threads are created inside such a call (the first parallel region runs in a matmul), so they
// inherit the blocked mask for good. Only kernels that reach the BLAS pay for the two syscalls.
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
GUARDED(linear)
GUARDED(linear_grad)
GUARDED(linear_half)
GUARDED(attention)
GUARDED(attention_grad)
GUARDED(cached_attention)
GUARDED(gpt_decode)
GUARDED(gpt_generate)

static napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"sgemmBatch", NULL, guarded_sgemm_batch, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, skd_napi_set_threads, NULL, NULL, NULL, napi_default, NULL},
      {"blas", NULL, skd_napi_blas, NULL, NULL, NULL, napi_default, NULL},
      {"biasActivation", NULL, skd_napi_bias_activation, NULL, NULL, NULL, napi_default, NULL},
      {"unary", NULL, skd_napi_unary, NULL, NULL, NULL, napi_default, NULL},
      {"gelu", NULL, skd_napi_gelu, NULL, NULL, NULL, napi_default, NULL},
      {"addSame", NULL, skd_napi_add_same, NULL, NULL, NULL, napi_default, NULL},
      {"transposeLast2", NULL, skd_napi_transpose_last2, NULL, NULL, NULL, napi_default, NULL},
      {"geluGrad", NULL, skd_napi_gelu_grad, NULL, NULL, NULL, napi_default, NULL},
      {"sumMiddle", NULL, skd_napi_sum_middle, NULL, NULL, NULL, napi_default, NULL},
      {"gatherRows", NULL, skd_napi_gather_rows, NULL, NULL, NULL, napi_default, NULL},
      {"unsortedSegmentSum", NULL, skd_napi_unsorted_segment_sum, NULL, NULL, NULL, napi_default, NULL},
      {"linear", NULL, guarded_linear, NULL, NULL, NULL, napi_default, NULL},
      {"linearGrad", NULL, guarded_linear_grad, NULL, NULL, NULL, napi_default, NULL},
      {"linearHalf", NULL, guarded_linear_half, NULL, NULL, NULL, napi_default, NULL},
      {"gatherHalf", NULL, skd_napi_gather_half, NULL, NULL, NULL, napi_default, NULL},
      {"widenHalf", NULL, skd_napi_widen_half, NULL, NULL, NULL, napi_default, NULL},
      {"layerNorm", NULL, skd_napi_layer_norm, NULL, NULL, NULL, napi_default, NULL},
      {"layerNormGrad", NULL, skd_napi_layer_norm_grad, NULL, NULL, NULL, napi_default, NULL},
      {"rmsNorm", NULL, skd_napi_rms_norm, NULL, NULL, NULL, napi_default, NULL},
      {"rmsNormGrad", NULL, skd_napi_rms_norm_grad, NULL, NULL, NULL, napi_default, NULL},
      {"rotary", NULL, skd_napi_rotary, NULL, NULL, NULL, napi_default, NULL},
      {"gatedActivation", NULL, skd_napi_gated_activation, NULL, NULL, NULL, napi_default, NULL},
      {"gatedActivationGrad", NULL, skd_napi_gated_activation_grad, NULL, NULL, NULL, napi_default, NULL},
      {"attention", NULL, guarded_attention, NULL, NULL, NULL, napi_default, NULL},
      {"attentionGrad", NULL, guarded_attention_grad, NULL, NULL, NULL, napi_default, NULL},
      {"cachedAttention", NULL, guarded_cached_attention, NULL, NULL, NULL, napi_default, NULL},
      {"logSoftmax", NULL, skd_napi_log_softmax, NULL, NULL, NULL, napi_default, NULL},
      {"logSoftmaxGrad", NULL, skd_napi_log_softmax_grad, NULL, NULL, NULL, napi_default, NULL},
      {"crossEntropy", NULL, skd_napi_cross_entropy, NULL, NULL, NULL, napi_default, NULL},
      {"crossEntropyGrad", NULL, skd_napi_cross_entropy_grad, NULL, NULL, NULL, napi_default, NULL},
      {"forwardKl", NULL, skd_napi_forward_kl, NULL, NULL, NULL, napi_default, NULL},
      {"forwardKlGrad", NULL, skd_napi_forward_kl_grad, NULL, NULL, NULL, napi_default, NULL},
      {"mixtureKl", NULL, skd_napi_mixture_kl, NULL, NULL, NULL, napi_default, NULL},
      {"mixtureKlGrad", NULL, skd_napi_mixture_kl_grad, NULL, NULL, NULL, napi_default, NULL},
      {"adamw", NULL, skd_napi_adamw, NULL, NULL, NULL, napi_default, NULL},
      {"gptDecode", NULL, guarded_gpt_decode, NULL, NULL, NULL, napi_default, NULL},
      {"gptGenerate", NULL, guarded_gpt_generate, NULL, NULL, NULL, napi_default, NULL},
      {"sampleTokens", NULL, skd_napi_sample_tokens, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  skd_blas_single_threaded();
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
