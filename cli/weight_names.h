/*
 * weight_names.h: the weight types' names on the command line (lzn-run
 * --type, lzn-quantize TYPE): the library's names (lzn_weight_type_name),
 * in lower case, "as-stored" for AS_STORED. Header-only: each CLI is one .c
 * file; it keeps no list of its own.
 */
#ifndef LZN_CLI_WEIGHT_NAMES_H
#define LZN_CLI_WEIGHT_NAMES_H

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <lazyneuron.h>

/* The type named (any case: "Q8_0" as llama-quantize spells it, "q8_0",
 * "as-stored"); 0 if none. */
static inline int lzn_cli_weight_type_from_name(const char *name, lzn_weight_type *out) {
  if (strcasecmp(name, "as-stored") == 0) name = "as_stored";
  return lzn_weight_type_from_name(name, out) == LZN_OK;
}

/* "f32", "q8_0", ..., "as-stored"; "?" for a value that is not one. The
 * pointer is to a buffer of the caller's thread, valid until the next call. */
static inline const char *lzn_cli_weight_type_name(lzn_weight_type type) {
  static _Thread_local char name[32];
  const char *lib = lzn_weight_type_name(type);
  if (lib == NULL) return "?";
  if (type == LZN_WEIGHTS_AS_STORED) return "as-stored";
  size_t i = 0;
  for (; lib[i] && i + 1 < sizeof name; i++) name[i] = (char)tolower((unsigned char)lib[i]);
  name[i] = '\0';
  return name;
}

/* "f32, f16, ..." (first_type: from which value on; 1 leaves out
 * as-stored), for usage messages. */
static inline const char *lzn_cli_weight_type_list(int first_type) {
  static _Thread_local char list[256];
  list[0] = '\0';
  for (int t = first_type; lzn_weight_type_name((lzn_weight_type)t) != NULL; t++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", t > first_type ? ", " : "",
             lzn_cli_weight_type_name((lzn_weight_type)t));
  return list;
}

#endif /* LZN_CLI_WEIGHT_NAMES_H */
