// The hidden layer of a gated MLP from packed projections, forward and backward: each row of x
// (rows, 2f) holds gate | up, and y = act(gate) up (rows, f). act: SiLU (SwiGLU: Llama, Qwen2),
// exact GELU or its tanh form (GeGLU: Gemma).
#include "common.h"

#define GELU_C 0.7978845608028654f  // sqrt(2 / pi)
#define GELU_A 0.044715f

enum { ACT_SILU = 0, ACT_GELU = 1, ACT_GELU_TANH = 2 };

// act(x) and its derivative.
static inline void activate(int act, float x, float* value, float* slope) {
  switch (act) {
    case ACT_SILU: {
      const float s = 1.0f / (1.0f + skd_exp(-x));
      *value = x * s;
      *slope = s * (1.0f + x * (1.0f - s));
      break;
    }
    case ACT_GELU: {
      const float cdf = 0.5f * (1.0f + erff(x * 0.7071067811865476f));
      *value = x * cdf;
      *slope = cdf + x * 0.3989422804014327f * skd_exp(-0.5f * x * x);
      break;
    }
    default: {
      const float t = skd_tanh(GELU_C * (x + GELU_A * x * x * x));
      *value = 0.5f * x * (1.0f + t);
      *slope = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_C * (1.0f + 3.0f * GELU_A * x * x);
      break;
    }
  }
}

typedef struct {
  const float *x, *dy;
  float *y, *dx;
  int64_t f;
  int act;
} gated_ctx;

// One row's forward and backward with the activation a compile-time constant in every instance (the
// switches below), so `activate` folds to one branch and GCC vectorises the loop (a switch inside it
// is control flow it will not vectorise: 2.6 ns an element before, at 24 rows of 2560).
static inline __attribute__((always_inline)) void forward_row(const int act, const float* gate, const float* up, float* y, int64_t f) {
  for (int64_t j = 0; j < f; j++) {
    float value, slope;
    activate(act, gate[j], &value, &slope);
    y[j] = value * up[j];
  }
}

static inline __attribute__((always_inline)) void backward_row(const int act, const float* gate, const float* up, const float* dy, float* dgate,
                                                              float* dup, int64_t f) {
  for (int64_t j = 0; j < f; j++) {
    float value, slope;
    activate(act, gate[j], &value, &slope);
    dgate[j] = dy[j] * up[j] * slope;
    dup[j] = dy[j] * value;
  }
}

static void forward_rows(void* ctx, int64_t from, int64_t to) {
  const gated_ctx* k = ctx;
  for (int64_t r = from; r < to; r++) {
    const float* gate = k->x + r * 2 * k->f;
    const float* up = gate + k->f;
    float* y = k->y + r * k->f;
    switch (k->act) {
      case ACT_SILU: forward_row(ACT_SILU, gate, up, y, k->f); break;
      case ACT_GELU: forward_row(ACT_GELU, gate, up, y, k->f); break;
      default: forward_row(ACT_GELU_TANH, gate, up, y, k->f); break;
    }
  }
}

static void backward_rows(void* ctx, int64_t from, int64_t to) {
  const gated_ctx* k = ctx;
  for (int64_t r = from; r < to; r++) {
    const float* gate = k->x + r * 2 * k->f;
    const float* up = gate + k->f;
    const float* dy = k->dy + r * k->f;
    float* dgate = k->dx + r * 2 * k->f;
    float* dup = dgate + k->f;
    switch (k->act) {
      case ACT_SILU: backward_row(ACT_SILU, gate, up, dy, dgate, dup, k->f); break;
      case ACT_GELU: backward_row(ACT_GELU, gate, up, dy, dgate, dup, k->f); break;
      default: backward_row(ACT_GELU_TANH, gate, up, dy, dgate, dup, k->f); break;
    }
  }
}

static bool read_args(skd_args* a, gated_ctx* k, int64_t* rows, size_t first) {
  *rows = skd_int(a, first);
  k->f = skd_int(a, first + 1);
  k->act = (int)skd_int(a, first + 2);
  if (*rows < 0 || k->f <= 0 || k->act < ACT_SILU || k->act > ACT_GELU_TANH) skd_fail(a, "bad shape (%lld, 2 x %lld) or activation %d", (long long)*rows, (long long)k->f, k->act);
  return a->error[0] == '\0';
}

// gatedActivation(x, y, rows, hidden, activation): x (rows, 2 hidden) → y (rows, hidden).
napi_value skd_napi_gated_activation(napi_env env, napi_callback_info info) {
  skd_args a;
  gated_ctx k = {0};
  int64_t rows;
  skd_args_init(&a, env, info, "gatedActivation", 5);
  read_args(&a, &k, &rows, 2);
  k.x = skd_f32(&a, 0, (size_t)(rows * 2 * k.f));
  k.y = skd_f32(&a, 1, (size_t)(rows * k.f));
  if (!skd_args_ok(&a)) return NULL;
  skd_for(rows, rows * k.f >= SKD_PARALLEL_ELEMENTS, forward_rows, &k);
  return NULL;
}

// gatedActivationGrad(dy, x, dx, rows, hidden, activation): dgate = dy up act'(gate), dup = dy act(gate).
napi_value skd_napi_gated_activation_grad(napi_env env, napi_callback_info info) {
  skd_args a;
  gated_ctx k = {0};
  int64_t rows;
  skd_args_init(&a, env, info, "gatedActivationGrad", 6);
  read_args(&a, &k, &rows, 3);
  k.dy = skd_f32(&a, 0, (size_t)(rows * k.f));
  k.x = skd_f32(&a, 1, (size_t)(rows * 2 * k.f));
  k.dx = skd_f32(&a, 2, (size_t)(rows * 2 * k.f));
  if (!skd_args_ok(&a)) return NULL;
  skd_for(rows, rows * k.f >= SKD_PARALLEL_ELEMENTS, backward_rows, &k);
  return NULL;
}
