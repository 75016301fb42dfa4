/*
 * output.h: the three output formats of lzn-bench. A mode builds its results
 * once, as a jansson array of flat objects (one per table row, the same keys
 * in the same order in each), and any format is printed from that: JSON as
 * is, CSV with the keys as header, markdown through a list of columns.
 */
#ifndef LZN_BENCH_OUTPUT_H
#define LZN_BENCH_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

typedef enum bench_format { BENCH_FORMAT_MD, BENCH_FORMAT_JSON, BENCH_FORMAT_CSV } bench_format;

/* "md", "json" or "csv"; anything else is a usage error naming opt. */
bench_format bench_parse_format(const char *opt, const char *text);

/* One markdown column: the value of key, followed by " [min-max]" when
 * key_min and key_max are set (the spread of repeated timings). decimals < 0
 * prints about four significant digits. Strings are left-aligned, numbers
 * right-aligned; null prints as "-". */
typedef struct bench_column {
  const char *title;
  const char *key;
  const char *key_min, *key_max;
  int decimals;
} bench_column;

void bench_write_md_table(FILE *out, const bench_column *columns, size_t n_columns,
                          const json_t *records);
/* Header row from the first record's keys; null prints as an empty field. */
void bench_write_csv(FILE *out, const json_t *records);
void bench_write_json(FILE *out, const json_t *records);

/* Adds key = value to a record, exiting on allocation failure (jansson
 * reports nothing else that could go wrong here). */
void bench_set(json_t *record, const char *key, json_t *value);

#endif /* LZN_BENCH_OUTPUT_H */
