// Rotary position embedding (the rotate-half form) on packed q|k|v rows, in place: within each
// head, the pair (x_i, x_{i + dh/2}) of q and of k rotates by position * base^(-2i/dh). Computed as
// the composite form in @skd/models computes it (angles in float32, cos and sin in double).
#include "common.h"
#include <stdlib.h>

void skd_rotary_rows(float* qkv, const int32_t* positions, int64_t rows, int64_t H, int64_t dh, float base) {
  const int64_t d = H * dh, half = dh / 2;
  float* inv = malloc(sizeof(float) * (size_t)SKD_MAX(half, 1));
  float* cs = malloc(sizeof(float) * 2 * (size_t)SKD_MAX(half, 1));
  if (!inv || !cs) {
    free(inv);
    free(cs);
    return;
  }
  for (int64_t i = 0; i < half; i++) inv[i] = (float)pow((double)base, -2.0 * (double)i / (double)dh);
  for (int64_t r = 0; r < rows; r++) {
    for (int64_t i = 0; i < half; i++) {
      const float angle = (float)positions[r] * inv[i];
      cs[2 * i] = (float)cos((double)angle);
      cs[2 * i + 1] = (float)sin((double)angle);
    }
    for (int64_t part = 0; part < 2; part++) {
      for (int64_t h = 0; h < H; h++) {
        float* p = qkv + r * 3 * d + part * d + h * dh;
        for (int64_t i = 0; i < half; i++) {
          const float x1 = p[i], x2 = p[i + half], c = cs[2 * i], s = cs[2 * i + 1];
          p[i] = x1 * c - x2 * s;
          p[i + half] = x2 * c + x1 * s;
        }
      }
    }
  }
  free(inv);
  free(cs);
}

// Rotary positions on the q and k heads of packed rows (rows, (H + 2 Hkv) dh), out of place: x → y
// with the v part copied. `frequencies` (dh/2) are the inverse frequencies (scaled as the model's
// rope settings say); `inverse` rotates by the opposite angle (the gradient of the rotation).
typedef struct {
  const float *x, *freq;
  float* y;
  const int32_t* positions;
  int64_t H, Hkv, dh;
  bool inverse;
} rope_ctx;

static void rope_rows(void* ctx, int64_t from, int64_t to) {
  const rope_ctx* k = ctx;
  const int64_t half = k->dh / 2, width = (k->H + 2 * k->Hkv) * k->dh, rotated = (k->H + k->Hkv) * k->dh;
  float cs[512];
  for (int64_t r = from; r < to; r++) {
    const float* xr = k->x + r * width;
    float* yr = k->y + r * width;
    for (int64_t i0 = 0; i0 < half; i0 += 256) {
      const int64_t m = SKD_MIN(256, half - i0);
      for (int64_t i = 0; i < m; i++) {
        const float angle = (float)k->positions[r] * k->freq[i0 + i];
        cs[2 * i] = (float)cos((double)angle);
        cs[2 * i + 1] = k->inverse ? -(float)sin((double)angle) : (float)sin((double)angle);
      }
      for (int64_t p = 0; p < rotated; p += k->dh) {
        const float* xh = xr + p;
        float* yh = yr + p;
        for (int64_t i = 0; i < m; i++) {
          const float x1 = xh[i0 + i], x2 = xh[i0 + i + half], c = cs[2 * i], s = cs[2 * i + 1];
          yh[i0 + i] = x1 * c - x2 * s;
          yh[i0 + i + half] = x2 * c + x1 * s;
        }
      }
    }
    memcpy(yr + rotated, xr + rotated, sizeof(float) * (size_t)(width - rotated));
  }
}

// rotary(x, positions, frequencies, y, rows, heads, kvHeads, headDim, inverse)
napi_value skd_napi_rotary(napi_env env, napi_callback_info info) {
  skd_args a;
  skd_args_init(&a, env, info, "rotary", 9);
  const int64_t rows = skd_int(&a, 4);
  rope_ctx k = {.H = skd_int(&a, 5), .Hkv = skd_int(&a, 6), .dh = skd_int(&a, 7), .inverse = skd_bool(&a, 8)};
  if (rows < 0 || k.H <= 0 || k.Hkv <= 0 || k.dh <= 0 || k.dh % 2 != 0) skd_fail(&a, "bad shape: rows %lld, heads %lld, kv heads %lld, head size %lld", (long long)rows, (long long)k.H, (long long)k.Hkv, (long long)k.dh);
  const size_t n = (size_t)(rows * (k.H + 2 * k.Hkv) * k.dh);
  k.x = skd_f32(&a, 0, n);
  k.positions = skd_i32(&a, 1, (size_t)rows);
  k.freq = skd_f32(&a, 2, (size_t)(k.dh / 2));
  k.y = skd_f32(&a, 3, n);
  if (!skd_args_ok(&a)) return NULL;
  skd_for(rows, (int64_t)n >= SKD_PARALLEL_ELEMENTS, rope_rows, &k);
  return NULL;
}
