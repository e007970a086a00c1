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
