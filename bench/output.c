/*
 * output.c: markdown, CSV and JSON from one array of flat records.
 */
#include "output.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

bench_format bench_parse_format(const char *opt, const char *text) {
  if (strcmp(text, "md") == 0) return BENCH_FORMAT_MD;
  if (strcmp(text, "json") == 0) return BENCH_FORMAT_JSON;
  if (strcmp(text, "csv") == 0) return BENCH_FORMAT_CSV;
  bench_usage_error("%s: unknown format \"%s\" (md, json, csv)", opt, text);
}

void bench_set(json_t *record, const char *key, json_t *value) {
  if (value == NULL || json_object_set_new(record, key, value) != 0)
    bench_fail("out of memory building the results");
}

/* About four significant digits without an exponent: 0.04213, 12.35, 1234. */
static int auto_decimals(double v) {
  const double a = fabs(v);
  if (a == 0.0 || !isfinite(a)) return 0;
  const int digits = 3 - (int)floor(log10(a));
  return digits < 0 ? 0 : digits > 6 ? 6 : digits;
}

static void format_value(char *buf, size_t size, const json_t *v, int decimals) {
  if (v == NULL || json_is_null(v)) {
    snprintf(buf, size, "-");
  } else if (json_is_integer(v)) {
    snprintf(buf, size, "%lld", (long long)json_integer_value(v));
  } else if (json_is_real(v)) {
    const double x = json_real_value(v);
    snprintf(buf, size, "%.*f", decimals < 0 ? auto_decimals(x) : decimals, x);
  } else if (json_is_string(v)) {
    snprintf(buf, size, "%s", json_string_value(v));
  } else if (json_is_boolean(v)) {
    snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false");
  } else {
    snprintf(buf, size, "?");
  }
}

#define CELL 96

static void format_cell(char *buf, const bench_column *c, const json_t *record) {
  format_value(buf, CELL, json_object_get(record, c->key), c->decimals);
  const json_t *lo = c->key_min ? json_object_get(record, c->key_min) : NULL;
  const json_t *hi = c->key_max ? json_object_get(record, c->key_max) : NULL;
  if (lo && hi && !json_is_null(lo)) {
    char lo_text[CELL / 3], hi_text[CELL / 3];
    format_value(lo_text, sizeof lo_text, lo, c->decimals);
    format_value(hi_text, sizeof hi_text, hi, c->decimals);
    const size_t used = strlen(buf);
    snprintf(buf + used, CELL - used, " [%s-%s]", lo_text, hi_text);
  }
}

void bench_write_md_table(FILE *out, const bench_column *columns, size_t n_columns,
                          const json_t *records) {
  const size_t n_rows = json_array_size(records);
  char *cells = malloc((n_rows + 1) * n_columns * CELL);
  size_t *width = calloc(n_columns, sizeof *width);
  int *numeric = calloc(n_columns, sizeof *numeric);
  if (cells == NULL || width == NULL || numeric == NULL) bench_fail("out of memory printing the table");
  /* Row 0 holds the titles; all cells are formatted first so that every
   * column can be padded to its widest cell and read well in a terminal. */
  for (size_t c = 0; c < n_columns; c++) {
    snprintf(cells + c * CELL, CELL, "%s", columns[c].title);
    const json_t *first = json_object_get(json_array_get(records, 0), columns[c].key);
    numeric[c] = first && json_is_number(first);
  }
  for (size_t r = 0; r < n_rows; r++)
    for (size_t c = 0; c < n_columns; c++)
      format_cell(cells + ((r + 1) * n_columns + c) * CELL, &columns[c], json_array_get(records, r));
  for (size_t i = 0; i < (n_rows + 1) * n_columns; i++) {
    const size_t len = strlen(cells + i * CELL);
    if (len > width[i % n_columns]) width[i % n_columns] = len;
  }
  for (size_t r = 0; r <= n_rows; r++) {
    for (size_t c = 0; c < n_columns; c++) {
      const int w = (int)width[c];
      const char *text = cells + (r * n_columns + c) * CELL;
      fprintf(out, numeric[c] && r > 0 ? "| %*s " : "| %-*s ", w, text);
    }
    fputs("|\n", out);
    if (r == 0) {
      for (size_t c = 0; c < n_columns; c++) {
        fputs("| ", out);
        for (size_t i = 1; i < width[c]; i++) fputc('-', out);
        fputs(numeric[c] ? ": " : "- ", out);
      }
      fputs("|\n", out);
    }
  }
  free(cells);
  free(width);
  free(numeric);
}

static void write_csv_field(FILE *out, const char *text) {
  if (strpbrk(text, ",\"\n") == NULL) {
    fputs(text, out);
    return;
  }
  fputc('"', out);
  for (const char *p = text; *p; p++) {
    if (*p == '"') fputc('"', out);
    fputc(*p, out);
  }
  fputc('"', out);
}

void bench_write_csv(FILE *out, const json_t *records) {
  const json_t *first = json_array_get(records, 0);
  if (first == NULL) return;
  const char *key;
  const json_t *value;
  int column = 0;
  /* jansson (>= 2.8) iterates an object in insertion order. */
  json_object_foreach((json_t *)(uintptr_t)first, key, value) {
    if (column++) fputc(',', out);
    write_csv_field(out, key);
  }
  fputc('\n', out);
  size_t r;
  const json_t *record;
  json_array_foreach(records, r, record) {
    column = 0;
    json_object_foreach((json_t *)(uintptr_t)first, key, value) {
      char text[CELL];
      const json_t *v = json_object_get(record, key);
      if (v && json_is_real(v)) {
        snprintf(text, sizeof text, "%.6g", json_real_value(v)); /* full precision, unlike md */
      } else if (v == NULL || json_is_null(v)) {
        text[0] = '\0';
      } else {
        format_value(text, sizeof text, v, 0);
      }
      if (column++) fputc(',', out);
      write_csv_field(out, text);
    }
    fputc('\n', out);
  }
}

void bench_write_json(FILE *out, const json_t *records) {
  if (json_dumpf(records, out, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) != 0)
    bench_fail("could not write the JSON output");
  fputc('\n', out);
}
