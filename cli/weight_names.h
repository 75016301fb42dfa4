/*
 * weight_names.h: the weight types' names on the command line (lzn-run
 * --type, lzn-quantize TYPE), in one place. Header-only: each CLI is one
 * .c file.
 */
#ifndef LZN_CLI_WEIGHT_NAMES_H
#define LZN_CLI_WEIGHT_NAMES_H

#include <strings.h>

#include <lazyneuron.h>

static const struct {
  const char *name;
  lzn_weight_type type;
} lzn_cli_weight_types[] = {
    {"as-stored", LZN_WEIGHTS_AS_STORED}, {"f32", LZN_WEIGHTS_F32},   {"f16", LZN_WEIGHTS_F16},
    {"bf16", LZN_WEIGHTS_BF16},           {"q8_0", LZN_WEIGHTS_Q8_0}, {"q4_0", LZN_WEIGHTS_Q4_0},
};
#define LZN_CLI_N_WEIGHT_TYPES (sizeof lzn_cli_weight_types / sizeof lzn_cli_weight_types[0])

/* The type named (any case: "Q8_0" as llama-quantize spells it, "q8_0");
 * 0 if none. */
static inline int lzn_cli_weight_type_from_name(const char *name, lzn_weight_type *out) {
  for (size_t i = 0; i < LZN_CLI_N_WEIGHT_TYPES; i++)
    if (strcasecmp(name, lzn_cli_weight_types[i].name) == 0) {
      *out = lzn_cli_weight_types[i].type;
      return 1;
    }
  return 0;
}

/* "f32", "q8_0", ...; "?" for a value that is not one. */
static inline const char *lzn_cli_weight_type_name(lzn_weight_type type) {
  for (size_t i = 0; i < LZN_CLI_N_WEIGHT_TYPES; i++)
    if (lzn_cli_weight_types[i].type == type) return lzn_cli_weight_types[i].name;
  return "?";
}

#endif /* LZN_CLI_WEIGHT_NAMES_H */
