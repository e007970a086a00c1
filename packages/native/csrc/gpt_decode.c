// One incremental decode step of a pre-LayerNorm GPT (GPT-2's layout, learned or rotary positions)
// in a single call: embeddings, every block (LayerNorm, q|k|v, attention over the KV cache, output
// projection with its residual, LayerNorm, MLP with GELU and its residual), the final LayerNorm and
// the head. It is the same network as GptModel's forward in @skd/models, from the same building
// blocks as the per-op kernels, without a JavaScript round trip per op: small models decode mostly
// in call overhead otherwise. The tests hold it to a full recomputation with the op-by-op path.
#include "common.h"
#include <stdlib.h>

#define PER_LAYER 12

static const float* param(skd_args* a, napi_value list, uint32_t index, size_t min_length) {
  napi_value value;
  bool is_typed = false;
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = NULL;
  napi_value buffer;
  if (a->error[0] != '\0') return NULL;
  if (napi_get_element(a->env, list, index, &value) != napi_ok || napi_is_typedarray(a->env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(a->env, value, &type, &length, &data, &buffer, &offset) != napi_ok || type != napi_float32_array) {
    skd_fail(a, "parameter %u must be a Float32Array", index);
    return NULL;
  }
  if (length < min_length) skd_fail(a, "parameter %u holds %zu values, needs %zu", index, length, min_length);
  return (const float*)data;
}

// gptDecode(params, tokens, positions, mask, lengths, keys, values, logits,
//           B, S, layers, heads, dModel, dFf, vocab, capacity, contextRows, epsilon, rotary, lastOnly)
//   params: [wte, wpe (learned positions only), per layer: ln_1 w b, c_attn w b, c_proj w b, ln_2 w b,
//   c_fc w b, mlp c_proj w b, then ln_f w b, head (vocab, dModel)]; keys, values: one cache per layer
//   (B, heads, capacity, headSize); logits (B * S or, with lastOnly, B rows, vocab).
napi_value skd_napi_gpt_decode(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "gptDecode", 20);
  const int64_t B = skd_int(&a, 8), S = skd_int(&a, 9), L = skd_int(&a, 10), H = skd_int(&a, 11), d = skd_int(&a, 12), ff = skd_int(&a, 13);
  const int64_t V = skd_int(&a, 14), cap = skd_int(&a, 15), ctx = skd_int(&a, 16);
  const float eps = (float)skd_num(&a, 17);
  const bool rotary = skd_bool(&a, 18), last_only = skd_bool(&a, 19);
  if (B < 1 || S < 1 || L < 1 || H < 1 || d < H || d % H != 0 || ff < 1 || V < 1 || cap < 1 || (!rotary && ctx < 1)) skd_fail(&a, "bad configuration");
  const int64_t rows = B * S, dh = d / H, out_rows = last_only ? B : rows;
  const int32_t* tokens = skd_i32(&a, 1, (size_t)rows);
  const int32_t* positions = skd_i32(&a, 2, (size_t)rows);
  const float* mask = skd_f32_or_null(&a, 3, (size_t)rows);
  const int32_t* lengths = skd_i32(&a, 4, (size_t)B);
  float* logits = skd_f32(&a, 7, (size_t)(out_rows * V));
  const float* wte = param(&a, a.argv[0], 0, (size_t)(V * d));
  const float* wpe = rotary ? NULL : param(&a, a.argv[0], 1, (size_t)(ctx * d));
  const uint32_t first = rotary ? 1 : 2;
  const float** p = calloc((size_t)(L * PER_LAYER + 3), sizeof(float*));
  float** keys = calloc((size_t)L, sizeof(float*));
  float** values = calloc((size_t)L, sizeof(float*));
  if (!p || !keys || !values) skd_fail(&a, "out of memory");
  const size_t sizes[PER_LAYER] = {(size_t)d, (size_t)d, (size_t)(d * 3 * d), (size_t)(3 * d), (size_t)(d * d), (size_t)d,
                                   (size_t)d, (size_t)d, (size_t)(d * ff), (size_t)ff, (size_t)(ff * d), (size_t)d};
  for (int64_t i = 0; p && i < L * PER_LAYER; i++) p[i] = param(&a, a.argv[0], first + (uint32_t)i, sizes[i % PER_LAYER]);
  const float* lnf_w = param(&a, a.argv[0], first + (uint32_t)(L * PER_LAYER), (size_t)d);
  const float* lnf_b = param(&a, a.argv[0], first + (uint32_t)(L * PER_LAYER) + 1, (size_t)d);
  const float* head = param(&a, a.argv[0], first + (uint32_t)(L * PER_LAYER) + 2, (size_t)(V * d));
  for (int64_t l = 0; keys && values && l < L; l++) {
    keys[l] = (float*)param(&a, a.argv[5], (uint32_t)l, (size_t)(B * H * cap * dh));
    values[l] = (float*)param(&a, a.argv[6], (uint32_t)l, (size_t)(B * H * cap * dh));
  }
  for (int64_t r = 0; a.error[0] == '\0' && r < rows; r++) {
    if (tokens[r] < 0 || tokens[r] >= V) skd_fail(&a, "token %d (position %lld) is outside the vocabulary [0, %lld)", tokens[r], (long long)r, (long long)V);
    else if (positions[r] < 0 || (!rotary && positions[r] >= ctx)) skd_fail(&a, "position %d is outside the context [0, %lld)", positions[r], (long long)ctx);
  }
  if (a.error[0] == '\0') skd_check_cache_room(&a, lengths, mask, B, S, cap);
  float* h = NULL;
  float *x = NULL, *qkv = NULL, *att = NULL, *hidden = NULL;
  if (a.error[0] == '\0') {
    h = malloc(sizeof(float) * (size_t)(rows * d));
    x = malloc(sizeof(float) * (size_t)(rows * d));
    qkv = malloc(sizeof(float) * (size_t)(rows * 3 * d));
    att = malloc(sizeof(float) * (size_t)(rows * d));
    hidden = malloc(sizeof(float) * (size_t)(rows * ff));
    if (!h || !x || !qkv || !att || !hidden) skd_fail(&a, "out of memory");
  }
  bool ok = skd_args_ok(&a);
  if (ok) {
    for (int64_t r = 0; r < rows; r++) {
      memcpy(h + r * d, wte + (int64_t)tokens[r] * d, sizeof(float) * (size_t)d);
      if (wpe) {
        const float* pe = wpe + (int64_t)positions[r] * d;
        for (int64_t c = 0; c < d; c++) h[r * d + c] += pe[c];
      }
    }
    const float scale = 1.0f / sqrtf((float)dh);
    for (int64_t l = 0; ok && l < L; l++) {
      const float** w = p + l * PER_LAYER;
      skd_layer_norm_rows(h, w[0], w[1], x, NULL, NULL, rows, d, eps);
      skd_linear_rows(x, w[2], w[3], NULL, qkv, rows, d, 3 * d);
      if (rotary) skd_rotary_rows(qkv, positions, rows, H, dh, 10000.0f);
      ok = skd_cached_attention_core(qkv, keys[l], values[l], lengths, mask, att, B, S, H, dh, cap, scale);
      skd_linear_rows(att, w[4], w[5], h, h, rows, d, d);
      skd_layer_norm_rows(h, w[6], w[7], x, NULL, NULL, rows, d, eps);
      skd_linear_rows(x, w[8], w[9], NULL, hidden, rows, d, ff);
      skd_gelu_rows(hidden, hidden, rows * ff);
      skd_linear_rows(hidden, w[10], w[11], h, h, rows, ff, d);
    }
    if (ok) {
      if (last_only) {
        for (int64_t b = 0; b < B; b++) memcpy(att + b * d, h + (b * S + S - 1) * d, sizeof(float) * (size_t)d);
        skd_layer_norm_rows(att, lnf_w, lnf_b, x, NULL, NULL, B, d, eps);
      } else {
        skd_layer_norm_rows(h, lnf_w, lnf_b, x, NULL, NULL, rows, d, eps);
      }
      skd_sgemm(false, true, out_rows, V, d, 1.0f, x, d, head, d, 0.0f, logits, V);
    } else {
      napi_throw_error(env, NULL, "skd-native gptDecode: out of memory");
    }
  }
  free(p);
  free(keys);
  free(values);
  free(h);
  free(x);
  free(qkv);
  free(att);
  free(hidden);
  return NULL;
}
