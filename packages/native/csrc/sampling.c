// Next-token choice on the device, so generation reads back B token ids per step instead of B x V
// logits. It computes exactly what chooseToken in @skd/models does in JavaScript (the reference,
// used on backends without this kernel): the same warped distribution in float64, the same
// categorical draw from the same uniform, so a seed picks the same tokens either way.
#include "common.h"
#include <stdlib.h>

typedef struct {
  float value;
  int32_t id;
} ranked;

// Higher logit first; equal logits by lower id (the JS order).
static int by_rank(const void* x, const void* y) {
  const ranked* a = (const ranked*)x;
  const ranked* b = (const ranked*)y;
  if (a->value != b->value) return a->value > b->value ? -1 : 1;
  return (a->id > b->id) - (a->id < b->id);
}

static bool before(const ranked* a, const ranked* b) { return by_rank(a, b) < 0; }

size_t skd_rank_scratch_bytes(int64_t width) { return sizeof(ranked) * (size_t)width; }

// Rng.random() of @skd/core: xoshiro128**, 53 bits from two draws. Same state, same numbers.
static uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

static uint32_t next_u32(uint32_t s[4]) {
  const uint32_t result = rotl(s[1] * 5u, 7) * 9u;
  const uint32_t t = s[1] << 9;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 11);
  return result;
}

double skd_rng_random(uint32_t state[4]) {
  const uint32_t hi = next_u32(state) >> 5;
  const uint32_t lo = next_u32(state) >> 6;
  return ((double)hi * 67108864.0 + (double)lo) / 9007199254740992.0;
}

// The first `limit` entries of the ranking into `top` (sorted): a bounded insertion for small
// limits, a full sort otherwise.
static void top_ranked(const float* x, int64_t width, int64_t limit, ranked* top) {
  if (limit * 8 >= width) {
    for (int64_t j = 0; j < width; j++) top[j] = (ranked){x[j], (int32_t)j};
    qsort(top, (size_t)width, sizeof(ranked), by_rank);
    return;
  }
  int64_t filled = 0;
  for (int64_t j = 0; j < width; j++) {
    const ranked item = {x[j], (int32_t)j};
    if (filled == limit && !before(&item, &top[limit - 1])) continue;
    int64_t at = filled < limit ? filled++ : limit - 1;
    while (at > 0 && before(&item, &top[at - 1])) {
      top[at] = top[at - 1];
      at--;
    }
    top[at] = item;
  }
}

int32_t skd_choose_token(const float* x, int64_t width, double u, double temperature, int64_t top_k, double top_p, bool greedy, double* probs,
                         void* order_scratch, unsigned char* keep) {
  ranked* order = order_scratch;
  for (int64_t j = 0; j < width; j++) {
    if (x[j] != x[j] || x[j] == INFINITY) return -2;
  }
  if (greedy) {
    int64_t best = 0;
    for (int64_t j = 1; j < width; j++) if (x[j] > x[best]) best = j;
    return (int32_t)best;
  }
  float mx = -INFINITY;
  for (int64_t j = 0; j < width; j++) mx = x[j] > mx ? x[j] : mx;
  if (mx == -INFINITY) return -3;
  double total = 0;
  for (int64_t j = 0; j < width; j++) {
    probs[j] = exp(((double)x[j] - (double)mx) / temperature);
    total += probs[j];
  }
  for (int64_t j = 0; j < width; j++) probs[j] /= total;
  const int64_t limit = top_k > 0 ? SKD_MIN(top_k, width) : width;
  if (limit < width || top_p < 1) {
    memset(keep, 0, (size_t)SKD_MAX(width, 0));
    top_ranked(x, width, limit, order);
    double mass = 0;
    for (int64_t r = 0; r < limit; r++) {
      const int32_t id = order[r].id;
      keep[id] = 1;
      mass += probs[id];
      if (top_p < 1 && mass >= top_p) break;
    }
  } else {
    memset(keep, 1, (size_t)width);
  }
  double kept = 0;
  for (int64_t j = 0; j < width; j++) {
    if (!keep[j]) probs[j] = 0;
    kept += probs[j];
  }
  for (int64_t j = 0; j < width; j++) probs[j] /= kept;
  // Rng.categorical over the warped probabilities, in id order.
  double sum = 0;
  for (int64_t j = 0; j < width; j++) sum += probs[j];
  const double target = u * sum;
  double acc = 0;
  int32_t last = -1;
  for (int64_t j = 0; j < width; j++) {
    if (probs[j] == 0) continue;
    acc += probs[j];
    last = (int32_t)j;
    if (target < acc) return (int32_t)j;
  }
  return last;
}

// sampleTokens(logits, ids, rows, width, uniforms, temperature, topK, topP, greedy)
//   ids[r] = the chosen token of row r. Returns -1, or the first row that failed, whose ids entry
//   then holds -2 (a NaN or +inf logit) or -3 (every logit -inf).
napi_value skd_napi_sample_tokens(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "sampleTokens", 9);
  const int64_t rows = skd_int(&a, 2), width = skd_int(&a, 3), top_k = skd_int(&a, 6);
  const double temperature = skd_num(&a, 5), top_p = skd_num(&a, 7);
  const bool greedy = skd_bool(&a, 8);
  if (rows < 0 || width <= 0) skd_fail(&a, "bad shape (%lld, %lld)", (long long)rows, (long long)width);
  if (!(temperature > 0) || top_k < 0 || !(top_p > 0 && top_p <= 1)) skd_fail(&a, "bad sampling options");
  const float* x = skd_f32(&a, 0, (size_t)(rows * width));
  int32_t* ids = skd_i32(&a, 1, (size_t)rows);
  const double* uniforms = greedy ? NULL : skd_f64(&a, 4, (size_t)rows);
  if (!skd_args_ok(&a)) return NULL;
  double* probs = malloc(sizeof(double) * (size_t)width);
  ranked* order = malloc(sizeof(ranked) * (size_t)width);
  unsigned char* keep = malloc((size_t)width);
  if (!probs || !order || !keep) {
    free(probs);
    free(order);
    free(keep);
    napi_throw_error(env, NULL, "skd-native sampleTokens: out of memory");
    return NULL;
  }
  int64_t failed = -1;
  for (int64_t r = 0; r < rows; r++) {
    ids[r] = skd_choose_token(x + r * width, width, greedy ? 0 : uniforms[r], temperature, top_k, top_p, greedy, probs, order, keep);
    if (ids[r] < 0) {
      failed = r;
      break;
    }
  }
  free(probs);
  free(order);
  free(keep);
  return skd_int_result(env, failed);
}
