// Argument reading for the N-API entry points: typed arrays (with a minimum length), integers,
// numbers and booleans. The first failure is kept and thrown once by skd_args_ok.
#include "common.h"
#include <stdarg.h>
#include <stdio.h>

bool skd_args_init(skd_args* a, napi_env env, napi_callback_info info, const char* fn, size_t expected) {
  a->env = env;
  a->fn = fn;
  a->error[0] = '\0';
  const size_t capacity = sizeof(a->argv) / sizeof(a->argv[0]);
  a->argc = capacity;
  if (expected > capacity || napi_get_cb_info(env, info, &a->argc, a->argv, NULL, NULL) != napi_ok) {
    a->argc = 0;
    skd_fail(a, "could not read the arguments");
  } else if (a->argc != expected) {
    skd_fail(a, "expects %zu arguments, got %zu", expected, a->argc);
    if (a->argc > capacity) a->argc = capacity;  // only the first `capacity` were read
  }
  return a->error[0] == '\0';
}

void skd_fail(skd_args* a, const char* format, ...) {
  if (a->error[0] != '\0') return;
  int n = snprintf(a->error, sizeof a->error, "skd-native %s: ", a->fn);
  if (n < 0 || (size_t)n >= sizeof a->error) return;
  va_list list;
  va_start(list, format);
  vsnprintf(a->error + n, sizeof a->error - (size_t)n, format, list);
  va_end(list);
}

static void* typed(skd_args* a, size_t i, napi_typedarray_type want, const char* what, size_t min_length, bool nullable) {
  if (a->error[0] != '\0' || i >= a->argc) return NULL;
  napi_valuetype kind;
  if (nullable && napi_typeof(a->env, a->argv[i], &kind) == napi_ok && (kind == napi_null || kind == napi_undefined)) return NULL;
  bool is_typed = false;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = NULL;
  napi_value buffer;
  size_t offset;
  if (napi_is_typedarray(a->env, a->argv[i], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(a->env, a->argv[i], &type, &length, &data, &buffer, &offset) != napi_ok || type != want) {
    skd_fail(a, "argument %zu must be a %s", i, what);
    return NULL;
  }
  if (length < min_length) {
    skd_fail(a, "argument %zu holds %zu elements, needs %zu", i, length, min_length);
    return NULL;
  }
  return data;
}

float* skd_f32(skd_args* a, size_t i, size_t min_length) {
  return (float*)typed(a, i, napi_float32_array, "Float32Array", min_length, false);
}

float* skd_f32_or_null(skd_args* a, size_t i, size_t min_length) {
  return (float*)typed(a, i, napi_float32_array, "Float32Array or null", min_length, true);
}

int32_t* skd_i32(skd_args* a, size_t i, size_t min_length) {
  return (int32_t*)typed(a, i, napi_int32_array, "Int32Array", min_length, false);
}

uint16_t* skd_u16(skd_args* a, size_t i, size_t min_length) {
  return (uint16_t*)typed(a, i, napi_uint16_array, "Uint16Array", min_length, false);
}

double* skd_f64(skd_args* a, size_t i, size_t min_length) {
  return (double*)typed(a, i, napi_float64_array, "Float64Array", min_length, false);
}

int64_t skd_int(skd_args* a, size_t i) {
  int64_t out = 0;
  if (a->error[0] == '\0' && (i >= a->argc || napi_get_value_int64(a->env, a->argv[i], &out) != napi_ok)) skd_fail(a, "argument %zu must be an integer", i);
  return out;
}

double skd_num(skd_args* a, size_t i) {
  double out = 0;
  if (a->error[0] == '\0' && (i >= a->argc || napi_get_value_double(a->env, a->argv[i], &out) != napi_ok)) skd_fail(a, "argument %zu must be a number", i);
  return out;
}

bool skd_bool(skd_args* a, size_t i) {
  bool out = false;
  if (a->error[0] == '\0' && (i >= a->argc || napi_get_value_bool(a->env, a->argv[i], &out) != napi_ok)) skd_fail(a, "argument %zu must be a boolean", i);
  return out;
}

bool skd_args_ok(skd_args* a) {
  if (a->error[0] == '\0') return true;
  napi_throw_range_error(a->env, NULL, a->error);
  return false;
}

napi_value skd_int_result(napi_env env, int64_t value) {
  napi_value result = NULL;
  napi_create_int64(env, value, &result);
  return result;
}
