// Incremental decoding of a pre-LayerNorm GPT (GPT-2's layout, learned or rotary positions) in
// single calls: one decode step (embeddings, every block over the KV cache, final LayerNorm, head),
// and a generation loop of such steps with the next token chosen on the device from the run's own
// random stream. It is the same network as GptModel's forward in @skd/models, from the same
// building blocks as the per-op kernels, without a JavaScript round trip per op or per token:
// small models decode mostly in call overhead otherwise. Tests hold both to the op-by-op paths.
#include "common.h"
#include <stdlib.h>

#define PER_LAYER 12

typedef struct {
  int64_t B, L, H, d, ff, V, cap, ctx, dh;
  float eps;
  bool rotary;
  const float *wte, *wpe, *lnf_w, *lnf_b, *head;
  const float** layer;  // L * PER_LAYER: ln_1 w b, c_attn w b, c_proj w b, ln_2 w b, c_fc w b, mlp c_proj w b
  float** keys;         // L caches (B, H, cap, dh)
  float** values;
} gpt_t;

typedef struct {
  float *h, *x, *qkv, *att, *hidden;
} gpt_scratch;

static const float* element(skd_args* a, napi_value list, uint32_t index, size_t min_length, const char* what) {
  napi_value value;
  bool is_typed = false;
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = NULL;
  napi_value buffer;
  if (a->error[0] != '\0') return NULL;
  if (napi_get_element(a->env, list, index, &value) != napi_ok || napi_is_typedarray(a->env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(a->env, value, &type, &length, &data, &buffer, &offset) != napi_ok || type != napi_float32_array) {
    skd_fail(a, "%s %u must be a Float32Array", what, index);
    return NULL;
  }
  if (length < min_length) skd_fail(a, "%s %u holds %zu values, needs %zu", what, index, length, min_length);
  return (const float*)data;
}

// Reads the model: params, keys and values arrays at argv[0..2], the configuration (B, layers,
// heads, dModel, dFf, vocab, capacity, contextRows, epsilon, rotary) from argv[first].
static void gpt_read(skd_args* a, gpt_t* g, size_t first) {
  g->B = skd_int(a, first);
  g->L = skd_int(a, first + 1);
  g->H = skd_int(a, first + 2);
  g->d = skd_int(a, first + 3);
  g->ff = skd_int(a, first + 4);
  g->V = skd_int(a, first + 5);
  g->cap = skd_int(a, first + 6);
  g->ctx = skd_int(a, first + 7);
  g->eps = (float)skd_num(a, first + 8);
  g->rotary = skd_bool(a, first + 9);
  if (g->B < 1 || g->L < 1 || g->H < 1 || g->d < g->H || g->d % g->H != 0 || g->ff < 1 || g->V < 1 || g->cap < 1 || (!g->rotary && g->ctx < 1)) {
    skd_fail(a, "bad configuration");
    return;
  }
  const int64_t d = g->d, ff = g->ff;
  g->dh = d / g->H;
  g->wte = element(a, a->argv[0], 0, (size_t)(g->V * d), "parameter");
  g->wpe = g->rotary ? NULL : element(a, a->argv[0], 1, (size_t)(g->ctx * d), "parameter");
  const uint32_t at = g->rotary ? 1 : 2;
  g->layer = calloc((size_t)(g->L * PER_LAYER), sizeof(float*));
  g->keys = calloc((size_t)g->L, sizeof(float*));
  g->values = calloc((size_t)g->L, sizeof(float*));
  if (!g->layer || !g->keys || !g->values) {
    skd_fail(a, "out of memory");
    return;
  }
  const size_t sizes[PER_LAYER] = {(size_t)d, (size_t)d, (size_t)(d * 3 * d), (size_t)(3 * d), (size_t)(d * d), (size_t)d,
                                   (size_t)d, (size_t)d, (size_t)(d * ff), (size_t)ff, (size_t)(ff * d), (size_t)d};
  for (int64_t i = 0; i < g->L * PER_LAYER; i++) g->layer[i] = element(a, a->argv[0], at + (uint32_t)i, sizes[i % PER_LAYER], "parameter");
  const uint32_t tail = at + (uint32_t)(g->L * PER_LAYER);
  g->lnf_w = element(a, a->argv[0], tail, (size_t)d, "parameter");
  g->lnf_b = element(a, a->argv[0], tail + 1, (size_t)d, "parameter");
  g->head = element(a, a->argv[0], tail + 2, (size_t)(g->V * d), "parameter");
  const size_t cache = (size_t)(g->B * g->H * g->cap * g->dh);
  for (int64_t l = 0; l < g->L; l++) {
    g->keys[l] = (float*)element(a, a->argv[1], (uint32_t)l, cache, "key cache");
    g->values[l] = (float*)element(a, a->argv[2], (uint32_t)l, cache, "value cache");
  }
}

static void gpt_free(gpt_t* g) {
  free(g->layer);
  free(g->keys);
  free(g->values);
}

static bool scratch_alloc(gpt_scratch* s, const gpt_t* g, int64_t rows) {
  s->h = malloc(sizeof(float) * (size_t)(rows * g->d));
  s->x = malloc(sizeof(float) * (size_t)(rows * g->d));
  s->qkv = malloc(sizeof(float) * (size_t)(rows * 3 * g->d));
  s->att = malloc(sizeof(float) * (size_t)(rows * g->d));
  s->hidden = malloc(sizeof(float) * (size_t)(rows * g->ff));
  return s->h && s->x && s->qkv && s->att && s->hidden;
}

static void scratch_free(gpt_scratch* s) {
  free(s->h);
  free(s->x);
  free(s->qkv);
  free(s->att);
  free(s->hidden);
}

// Fails `a` unless tokens lie in the vocabulary and positions in the context.
static void check_inputs(skd_args* a, const gpt_t* g, const int32_t* tokens, const int32_t* positions, const float* mask, int64_t rows) {
  for (int64_t r = 0; a->error[0] == '\0' && r < rows; r++) {
    if (mask && mask[r] == 0.0f) continue;
    if (tokens[r] < 0 || tokens[r] >= g->V) skd_fail(a, "token %d (position %lld) is outside the vocabulary [0, %lld)", tokens[r], (long long)r, (long long)g->V);
    else if (positions[r] < 0 || (!g->rotary && positions[r] >= g->ctx)) skd_fail(a, "position %d is outside the context [0, %lld)", positions[r], (long long)g->ctx);
  }
}

// One step for S slots per row (mask 0: padding, skipped by the cache); logits of every slot, or of
// each row's last slot (last_only). False when out of memory.
static bool gpt_step(const gpt_t* g, gpt_scratch* s, const int32_t* tokens, const int32_t* positions, const float* mask, const int32_t* lengths,
                     int64_t S, bool last_only, float* logits) {
  const int64_t rows = g->B * S, d = g->d, ff = g->ff;
  for (int64_t r = 0; r < rows; r++) {
    // Padding slots may hold any id: they are computed (and ignored), so read a valid row for them.
    const int64_t token = (tokens[r] >= 0 && tokens[r] < g->V) ? tokens[r] : 0;
    memcpy(s->h + r * d, g->wte + token * d, sizeof(float) * (size_t)d);
    if (g->wpe) {
      const int64_t position = positions[r] >= 0 && positions[r] < g->ctx ? positions[r] : 0;
      const float* pe = g->wpe + position * d;
      for (int64_t c = 0; c < d; c++) s->h[r * d + c] += pe[c];
    }
  }
  const float scale = 1.0f / sqrtf((float)g->dh);
  for (int64_t l = 0; l < g->L; l++) {
    const float** w = g->layer + l * PER_LAYER;
    skd_layer_norm_rows(s->h, w[0], w[1], s->x, NULL, NULL, rows, d, g->eps);
    skd_linear_rows(s->x, w[2], w[3], NULL, s->qkv, rows, d, 3 * d);
    if (g->rotary) skd_rotary_rows(s->qkv, positions, rows, g->H, g->dh, 10000.0f);
    const skd_attention_shape shape = {.H = g->H, .Hkv = g->H, .dh = g->dh, .scale = scale, .softcap = 0.0f, .window = 0};
    if (!skd_cached_attention_core(s->qkv, g->keys[l], g->values[l], lengths, mask, s->att, g->B, S, &shape, g->cap)) return false;
    skd_linear_rows(s->att, w[4], w[5], s->h, s->h, rows, d, d);
    skd_layer_norm_rows(s->h, w[6], w[7], s->x, NULL, NULL, rows, d, g->eps);
    skd_linear_rows(s->x, w[8], w[9], NULL, s->hidden, rows, d, ff);
    skd_gelu_rows(s->hidden, s->hidden, rows * ff);
    skd_linear_rows(s->hidden, w[10], w[11], s->h, s->h, rows, ff, d);
  }
  const int64_t out_rows = last_only ? g->B : rows;
  if (last_only && S > 1) {
    for (int64_t b = 0; b < g->B; b++) memcpy(s->att + b * d, s->h + (b * S + S - 1) * d, sizeof(float) * (size_t)d);
    skd_layer_norm_rows(s->att, g->lnf_w, g->lnf_b, s->x, NULL, NULL, out_rows, d, g->eps);
  } else {
    skd_layer_norm_rows(s->h, g->lnf_w, g->lnf_b, s->x, NULL, NULL, out_rows, d, g->eps);
  }
  skd_sgemm(false, true, out_rows, g->V, d, 1.0f, s->x, d, g->head, d, 0.0f, logits, g->V);
  return true;
}

// gptDecode(params, keys, values, tokens, positions, mask, lengths, logits, S, lastOnly,
//           B, layers, heads, dModel, dFf, vocab, capacity, contextRows, epsilon, rotary)
//   params: [wte, wpe (learned positions only), per layer: ln_1 w b, c_attn w b, c_proj w b, ln_2 w b,
//   c_fc w b, mlp c_proj w b, then ln_f w b, head (vocab, dModel)]; keys, values: one cache per layer
//   (B, heads, capacity, headSize); logits (B * S, or B with lastOnly, rows of vocab).
napi_value skd_napi_gpt_decode(napi_env env, napi_callback_info info) {
  skd_args a;
  gpt_t g = {0};
  skd_args_init(&a, env, info, "gptDecode", 20);
  gpt_read(&a, &g, 10);
  const int64_t S = skd_int(&a, 8);
  const bool last_only = skd_bool(&a, 9);
  if (S < 1) skd_fail(&a, "S must be >= 1");
  const int64_t rows = g.B * S;
  const int32_t* tokens = skd_i32(&a, 3, (size_t)rows);
  const int32_t* positions = skd_i32(&a, 4, (size_t)rows);
  const float* mask = skd_f32_or_null(&a, 5, (size_t)rows);
  const int32_t* lengths = skd_i32(&a, 6, (size_t)g.B);
  float* logits = skd_f32(&a, 7, (size_t)((last_only ? g.B : rows) * g.V));
  if (a.error[0] == '\0') check_inputs(&a, &g, tokens, positions, mask, rows);
  if (a.error[0] == '\0') skd_check_cache_room(&a, lengths, mask, g.B, S, g.cap);
  gpt_scratch s = {0};
  if (a.error[0] == '\0' && !scratch_alloc(&s, &g, rows)) skd_fail(&a, "out of memory");
  if (skd_args_ok(&a) && !gpt_step(&g, &s, tokens, positions, mask, lengths, S, last_only, logits)) {
    napi_throw_error(env, NULL, "skd-native gptDecode: out of memory");
  }
  scratch_free(&s);
  gpt_free(&g);
  return NULL;
}

// gptGenerate(params, keys, values, lengths, logits, feed, live, budgets, rngState, tokens, counts,
//             steps, eos, temperature, topK, topP, greedy,
//             B, layers, heads, dModel, dFf, vocab, capacity, contextRows, epsilon, rotary)
//   A generation loop of up to `steps` tokens per row, single-token decode steps in between:
//   - lengths (B): real tokens cached per row, updated in place;
//   - logits (B, vocab): next-token logits of rows that do not feed first (may be null if all do);
//   - feed (B): a token each row reads before its first choice, or -1 (SKD's pending token);
//   - live (B): 1 for rows that generate; budgets (B): most tokens for each;
//   - rngState (4 words, as Int32Array): Rng state of @skd/core, advanced by exactly the draws the
//     JavaScript loop would take (one per non-greedy choice, rows in order, step by step);
//   - tokens (B, steps): the chosen tokens, -1 after each row's count; counts (B).
//   A row stops at EOS or its budget; the token it stops on is chosen but not read (as the loop in
//   generate() and SKD's drafting do). Returns -1, or the first row whose logits hold NaN or +inf
//   (its tokens entry then holds -2), or every -inf (-3).
napi_value skd_napi_gpt_generate(napi_env env, napi_callback_info info) {
  skd_args a;
  gpt_t g = {0};
  skd_args_init(&a, env, info, "gptGenerate", 27);
  gpt_read(&a, &g, 17);
  const int64_t B = g.B, V = g.V;
  const int64_t steps = skd_int(&a, 11), eos = skd_int(&a, 12), top_k = skd_int(&a, 14);
  const double temperature = skd_num(&a, 13), top_p = skd_num(&a, 15);
  const bool greedy = skd_bool(&a, 16);
  if (steps < 1 || !(temperature > 0) || top_k < 0 || !(top_p > 0 && top_p <= 1)) skd_fail(&a, "bad steps or sampling options");
  int32_t* lengths = skd_i32(&a, 3, (size_t)B);
  const float* logits0 = skd_f32_or_null(&a, 4, (size_t)(B * V));
  const int32_t* feed = skd_i32(&a, 5, (size_t)B);
  const int32_t* live_in = skd_i32(&a, 6, (size_t)B);
  const int32_t* budgets = skd_i32(&a, 7, (size_t)B);
  int32_t* rng_words = skd_i32(&a, 8, 4);
  int32_t* out = skd_i32(&a, 9, (size_t)(B * steps));
  int32_t* counts = skd_i32(&a, 10, (size_t)B);
  for (int64_t b = 0; a.error[0] == '\0' && b < B; b++) {
    if (live_in[b] && feed[b] < 0 && !logits0) skd_fail(&a, "row %lld neither feeds a token nor has logits", (long long)b);
    if (live_in[b] && feed[b] >= V) skd_fail(&a, "token %d (row %lld) is outside the vocabulary [0, %lld)", feed[b], (long long)b, (long long)V);
    if (live_in[b] && lengths[b] + (feed[b] >= 0 ? 1 : 0) + budgets[b] - 1 > g.cap) {
      skd_fail(&a, "row %lld: %d cached tokens and %d more exceed the capacity %lld", (long long)b, lengths[b], budgets[b], (long long)g.cap);
    }
  }
  gpt_scratch s = {0};
  float* cur = malloc(sizeof(float) * (size_t)(B * V));
  float* fresh = malloc(sizeof(float) * (size_t)(B * V));
  int32_t* tokens = malloc(sizeof(int32_t) * (size_t)B);
  int32_t* positions = malloc(sizeof(int32_t) * (size_t)B);
  float* mask = malloc(sizeof(float) * (size_t)B);
  bool* live = malloc(sizeof(bool) * (size_t)B);
  double* probs = malloc(sizeof(double) * (size_t)V);
  void* order = malloc(skd_rank_scratch_bytes(V));
  unsigned char* keep = malloc((size_t)V);
  if (a.error[0] == '\0' && (!scratch_alloc(&s, &g, B) || !cur || !fresh || !tokens || !positions || !mask || !live || !probs || !order || !keep)) {
    skd_fail(&a, "out of memory");
  }
  int64_t failed = -1;
  if (skd_args_ok(&a)) {
    uint32_t rng[4];
    memcpy(rng, rng_words, sizeof rng);
    if (logits0) memcpy(cur, logits0, sizeof(float) * (size_t)(B * V));
    for (int64_t b = 0; b < B; b++) {
      live[b] = live_in[b] != 0;
      counts[b] = 0;
      for (int64_t j = 0; j < steps; j++) out[b * steps + j] = -1;
    }
    // Feeds the rows marked in mask (tokens at each row's next position) and takes their logits.
    bool ok = true;
#define FEED()                                                                                     \
  do {                                                                                             \
    for (int64_t b = 0; b < B; b++) positions[b] = lengths[b];                                     \
    ok = gpt_step(&g, &s, tokens, positions, mask, lengths, 1, true, fresh);                       \
    for (int64_t b = 0; ok && b < B; b++) {                                                        \
      if (mask[b] == 0.0f) continue;                                                               \
      memcpy(cur + b * V, fresh + b * V, sizeof(float) * (size_t)V);                               \
      lengths[b] += 1;                                                                             \
    }                                                                                              \
  } while (0)
    bool any = false;
    for (int64_t b = 0; b < B; b++) {
      const bool feeds = live[b] && feed[b] >= 0;
      tokens[b] = feeds ? feed[b] : 0;
      mask[b] = feeds ? 1.0f : 0.0f;
      any = any || feeds;
    }
    if (any) FEED();
    for (int64_t step = 0; ok && failed < 0 && step < steps; step++) {
      any = false;
      for (int64_t b = 0; b < B; b++) {
        mask[b] = 0.0f;
        if (!live[b]) continue;
        const double u = greedy ? 0.0 : skd_rng_random(rng);
        const int32_t token = skd_choose_token(cur + b * V, V, u, temperature, top_k, top_p, greedy, probs, order, keep);
        if (token < 0) {
          out[b * steps + counts[b]] = token;
          failed = b;
          break;
        }
        out[b * steps + counts[b]] = token;
        counts[b] += 1;
        if (token == eos || counts[b] >= budgets[b]) {
          live[b] = false;
          continue;
        }
        tokens[b] = token;
        mask[b] = 1.0f;
        any = true;
      }
      if (failed >= 0 || !any || step == steps - 1) break;
      FEED();
    }
#undef FEED
    memcpy(rng_words, rng, sizeof rng);
    if (!ok) napi_throw_error(env, NULL, "skd-native gptGenerate: out of memory");
  }
  scratch_free(&s);
  gpt_free(&g);
  free(cur);
  free(fresh);
  free(tokens);
  free(positions);
  free(mask);
  free(live);
  free(probs);
  free(order);
  free(keep);
  return skd_int_result(env, failed);
}
