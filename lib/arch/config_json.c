/*
 * config_json.c: config.json fields (config_json.h).
 */
#include "arch/config_json.h"

#include <math.h>
#include <string.h>

#include "core/errors.h"
#include "core/json.h"

const json_t *lzn_cfg_get(const json_t *root, const char *field) {
  const json_t *value = json_object_get(root, field);
  return json_is_null(value) ? NULL : value;
}

lzn_status lzn_cfg_size(const char *path, const json_t *root, const char *field, int required,
                        int fallback, int *out) {
  /* A required field written as null is a wrong value, not a missing one. */
  const json_t *value = required ? json_object_get(root, field) : lzn_cfg_get(root, field);
  if (value == NULL) {
    if (required) return lzn_fail(LZN_ERR_FORMAT, "%s: missing required field \"%s\"", path, field);
    *out = fallback;
    return LZN_OK;
  }
  if (!json_is_integer(value))
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"%s\" must be a positive integer, got %s", path, field,
                    lzn_json_kind(value));
  const json_int_t v = json_integer_value(value);
  if (v <= 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"%s\" is %lld, must be a positive integer", path, field,
                    (long long)v);
  if (v > LZN_CONFIG_MAX_SIZE)
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"%s\" is %lld, beyond the limit of %d", path, field,
                    (long long)v, LZN_CONFIG_MAX_SIZE);
  *out = (int)v;
  return LZN_OK;
}

lzn_status lzn_cfg_bool(const char *path, const json_t *root, const char *field, int fallback,
                        int *out) {
  const json_t *value = lzn_cfg_get(root, field);
  if (value == NULL) {
    *out = fallback;
    return LZN_OK;
  }
  if (!json_is_boolean(value))
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"%s\" must be true or false, got %s", path, field,
                    lzn_json_kind(value));
  *out = json_is_true(value);
  return LZN_OK;
}

lzn_status lzn_cfg_number(const char *path, const json_t *root, const char *field, double fallback,
                          double lo, double hi, double *out) {
  const json_t *value = lzn_cfg_get(root, field);
  if (value == NULL) {
    *out = fallback;
    return LZN_OK;
  }
  if (!json_is_number(value))
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"%s\" must be a number, got %s", path, field,
                    lzn_json_kind(value));
  const double v = json_number_value(value);
  if (!(v >= lo && v <= hi) || !isfinite(v))
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"%s\" is %g, must be in [%g, %g]", path, field, v, lo, hi);
  *out = v;
  return LZN_OK;
}

lzn_status lzn_cfg_string(const char *path, const json_t *root, const char *field,
                          const char *fallback, const char **out) {
  const json_t *value = lzn_cfg_get(root, field);
  if (value == NULL) {
    *out = fallback;
    return LZN_OK;
  }
  if (!json_is_string(value))
    return lzn_fail(LZN_ERR_FORMAT, "%s: \"%s\" must be a string, got %s", path, field,
                    lzn_json_kind(value));
  *out = json_string_value(value);
  return LZN_OK;
}

static int in_list(const char *name, const char *const *list) {
  for (size_t i = 0; name && list[i]; i++)
    if (strcmp(name, list[i]) == 0) return 1;
  return 0;
}

int lzn_cfg_names_any(const json_t *root, const char *const *model_types,
                      const char *const *architectures) {
  if (in_list(json_string_value(lzn_cfg_get(root, "model_type")), model_types)) return 1;
  const json_t *list = lzn_cfg_get(root, "architectures");
  size_t i;
  const json_t *name;
  json_array_foreach(list, i, name) {
    if (in_list(json_string_value(name), architectures)) return 1;
  }
  return 0;
}
