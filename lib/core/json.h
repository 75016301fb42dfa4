/*
 * json.h: small helpers over jansson for the JSON files beside the weights.
 */
#ifndef LZN_JSON_H
#define LZN_JSON_H

#include <jansson.h>

/* "an object", "an array", "a string", "an integer", "a real number",
 * "a boolean", "null": what a value is, for messages. */
const char *lzn_json_kind(const json_t *v);

#endif /* LZN_JSON_H */
