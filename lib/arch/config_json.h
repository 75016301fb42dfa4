/*
 * config_json.h: reading fields of a Hugging Face config.json, with the
 * messages every architecture's parser gives: the file, the field and the
 * rule. Private.
 */
#ifndef LZN_CONFIG_JSON_H
#define LZN_CONFIG_JSON_H

#include <jansson.h>

#include "lazyneuron.h"

/* Largest value accepted for a size in a config: anything beyond is surely a
 * broken or hostile file, and keeps every product of two sizes in int64. */
#define LZN_CONFIG_MAX_SIZE (1 << 24)

/* The field, or NULL when absent or null (transformers writes null for an
 * unset optional field). */
const json_t *lzn_cfg_get(const json_t *root, const char *field);

/* A size: an integer in [1, LZN_CONFIG_MAX_SIZE]. Absent: FORMAT if
 * required, else *out = fallback. */
lzn_status lzn_cfg_size(const char *path, const json_t *root, const char *field, int required,
                        int fallback, int *out);

/* true / false; absent: *out = fallback. */
lzn_status lzn_cfg_bool(const char *path, const json_t *root, const char *field, int fallback,
                        int *out);

/* A number in [lo, hi] (integers accepted); absent: *out = fallback. */
lzn_status lzn_cfg_number(const char *path, const json_t *root, const char *field, double fallback,
                          double lo, double hi, double *out);

/* A string; absent: *out = fallback. The pointer lives as long as root. */
lzn_status lzn_cfg_string(const char *path, const json_t *root, const char *field,
                          const char *fallback, const char **out);

/* Whether model_type, or any entry of "architectures", equals one of the
 * NULL-terminated names (type errors are left to the parser). */
int lzn_cfg_names_any(const json_t *root, const char *const *model_types,
                      const char *const *architectures);

#endif /* LZN_CONFIG_JSON_H */
