// The addon's entry point: registers every kernel. Each group of kernels lives in its own file.
#include "common.h"

static napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"sgemmBatch", NULL, skd_napi_sgemm_batch, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, skd_napi_set_threads, NULL, NULL, NULL, napi_default, NULL},
      {"blas", NULL, skd_napi_blas, NULL, NULL, NULL, napi_default, NULL},
      {"biasActivation", NULL, skd_napi_bias_activation, NULL, NULL, NULL, napi_default, NULL},
      {"unary", NULL, skd_napi_unary, NULL, NULL, NULL, napi_default, NULL},
      {"gelu", NULL, skd_napi_gelu, NULL, NULL, NULL, napi_default, NULL},
      {"geluGrad", NULL, skd_napi_gelu_grad, NULL, NULL, NULL, napi_default, NULL},
      {"sumMiddle", NULL, skd_napi_sum_middle, NULL, NULL, NULL, napi_default, NULL},
      {"gatherRows", NULL, skd_napi_gather_rows, NULL, NULL, NULL, napi_default, NULL},
      {"unsortedSegmentSum", NULL, skd_napi_unsorted_segment_sum, NULL, NULL, NULL, napi_default, NULL},
      {"layerNorm", NULL, skd_napi_layer_norm, NULL, NULL, NULL, napi_default, NULL},
      {"layerNormGrad", NULL, skd_napi_layer_norm_grad, NULL, NULL, NULL, napi_default, NULL},
      {"attention", NULL, skd_napi_attention, NULL, NULL, NULL, napi_default, NULL},
      {"attentionGrad", NULL, skd_napi_attention_grad, NULL, NULL, NULL, napi_default, NULL},
      {"cachedAttention", NULL, skd_napi_cached_attention, NULL, NULL, NULL, napi_default, NULL},
      {"logSoftmax", NULL, skd_napi_log_softmax, NULL, NULL, NULL, napi_default, NULL},
      {"logSoftmaxGrad", NULL, skd_napi_log_softmax_grad, NULL, NULL, NULL, napi_default, NULL},
      {"crossEntropy", NULL, skd_napi_cross_entropy, NULL, NULL, NULL, napi_default, NULL},
      {"crossEntropyGrad", NULL, skd_napi_cross_entropy_grad, NULL, NULL, NULL, napi_default, NULL},
      {"adamw", NULL, skd_napi_adamw, NULL, NULL, NULL, napi_default, NULL},
      {"sampleTokens", NULL, skd_napi_sample_tokens, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  skd_blas_single_threaded();
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
