/*
 * st_index.c: the tensors of a Hugging Face model folder: model.safetensors,
 * or model.safetensors.index.json and the shards its weight_map names, with
 * every tensor findable by name.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/errors.h"
#include "core/file.h"
#include "core/json.h"
#include "format/safetensors.h"

/* ------------------------------------------------------------- shard index */

/* A shard must be a plain file name in the model folder: an index must not
 * make us open files elsewhere ("../x", "/etc/x", "sub\\x" on Windows). */
static lzn_status check_shard_name(const char *path, const char *tensor, const char *shard) {
  const char *rule = NULL;
  if (shard[0] == '\0') rule = "is empty";
  else if (strchr(shard, '/') != NULL) rule = "contains '/'";
  else if (strchr(shard, '\\') != NULL) rule = "contains '\\'";
  else if (strcmp(shard, ".") == 0 || strcmp(shard, "..") == 0) rule = "is a directory name";
  if (rule == NULL) return LZN_OK;
  return lzn_fail(LZN_ERR_FORMAT, "%s: weight_map entry for tensor \"%s\": shard \"%s\" %s; it must be a plain file name in the model folder",
                  path, tensor, shard, rule);
}

/* The weight_map of an index (a new reference, caller decrefs) after checking
 * the index's shape: an object with a non-empty weight_map of strings. */
static lzn_status load_weight_map(const char *json, size_t len, const char *path, json_t **out) {
  json_error_t error;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &error);
  if (root == NULL)
    return lzn_fail(LZN_ERR_FORMAT, "%s: not valid JSON (line %d, column %d: %s)",
                    path, error.line, error.column, error.text);
  json_t *map = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
  lzn_status status = LZN_OK;
  if (!json_is_object(root))
    status = lzn_fail(LZN_ERR_FORMAT, "%s: the index must be a JSON object", path);
  else if (map == NULL)
    status = lzn_fail(LZN_ERR_FORMAT, "%s: missing \"weight_map\"", path);
  else if (!json_is_object(map))
    status = lzn_fail(LZN_ERR_FORMAT, "%s: \"weight_map\" must be an object, got %s", path, lzn_json_kind(map));
  else if (json_object_size(map) == 0)
    status = lzn_fail(LZN_ERR_FORMAT, "%s: \"weight_map\" is empty", path);
  if (status == LZN_OK) *out = json_incref(map);
  json_decref(root);
  return status;
}

/* Unique shard names of a checked weight_map, in first-seen order. A jansson
 * object serves as the hash set of names already seen. */
static lzn_status collect_shards(const char *path, json_t *map, char ***shards, size_t *n_shards) {
  json_t *seen = json_object();
  char **names = calloc(json_object_size(map), sizeof *names);
  if (seen == NULL || names == NULL) {
    json_decref(seen);
    free(names);
    return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate the shard list", path);
  }
  size_t n = 0;
  lzn_status status = LZN_OK;
  const char *tensor;
  json_t *shard;
  json_object_foreach(map, tensor, shard) {
    if (!json_is_string(shard)) {
      status = lzn_fail(LZN_ERR_FORMAT, "%s: weight_map entry for tensor \"%s\" must be a shard file name (a string), got %s",
                        path, tensor, lzn_json_kind(shard));
      break;
    }
    const char *name = json_string_value(shard);
    status = check_shard_name(path, tensor, name);
    if (status != LZN_OK) break;
    if (json_object_get(seen, name) != NULL) continue;
    names[n] = strdup(name);
    if (names[n] == NULL || json_object_set_new(seen, name, json_true()) != 0) {
      free(names[n]);
      status = lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate the shard list", path);
      break;
    }
    n++;
  }
  json_decref(seen);
  if (status != LZN_OK) {
    lzn_st_index_free(names, n);
    return status;
  }
  *shards = names;
  *n_shards = n;
  return LZN_OK;
}

lzn_status lzn_st_index_parse(const char *json, size_t len, const char *path_for_errors,
                              char ***shards, size_t *n_shards) {
  if (shards != NULL) *shards = NULL;
  if (n_shards != NULL) *n_shards = 0;
  if ((json == NULL && len != 0) || shards == NULL || n_shards == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_st_index_parse: json, shards and n_shards must not be NULL");
  const char *path = path_for_errors != NULL ? path_for_errors : "(memory)";
  json_t *map;
  lzn_status status = load_weight_map(json != NULL ? json : "", len, path, &map);
  if (status != LZN_OK) return status;
  status = collect_shards(path, map, shards, n_shards);
  json_decref(map);
  return status;
}

void lzn_st_index_free(char **shards, size_t n_shards) {
  if (shards == NULL) return;
  for (size_t i = 0; i < n_shards; i++) free(shards[i]);
  free(shards);
}

/* ----------------------------------------------------------------- weights */

static char *join_path(const char *dir, const char *name) {
  const size_t dir_len = strlen(dir), name_len = strlen(name);
  char *joined = malloc(dir_len + 1 + name_len + 1);
  if (joined == NULL) return NULL;
  memcpy(joined, dir, dir_len);
  joined[dir_len] = '/';
  memcpy(joined + dir_len + 1, name, name_len + 1);
  return joined;
}

static int compare_tensor_names(const void *a, const void *b) {
  const lzn_st_tensor *const *x = a, *const *y = b;
  return strcmp((*x)->name, (*y)->name);
}

/* w->by_name from w->files; a name in two files is an error (within one file
 * the JSON parser already rejected duplicate keys). */
static lzn_status index_tensor_names(lzn_weights *w) {
  size_t total = 0;
  for (size_t i = 0; i < w->n_files; i++) total += w->files[i].n_tensors;
  const lzn_st_tensor **by_name = calloc(total ? total : 1, sizeof *by_name);
  if (by_name == NULL) return lzn_fail(LZN_ERR_NOMEM, "cannot allocate an index of %zu tensors", total);
  size_t n = 0;
  for (size_t i = 0; i < w->n_files; i++)
    for (size_t j = 0; j < w->files[i].n_tensors; j++) by_name[n++] = &w->files[i].tensors[j];
  qsort(by_name, n, sizeof *by_name, compare_tensor_names);
  w->by_name = by_name;
  w->n_tensors = n;
  for (size_t i = 1; i < n; i++)
    if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0)
      return lzn_fail(LZN_ERR_FORMAT, "tensor \"%s\" is in two shards: %s and %s",
                      by_name[i]->name, by_name[i - 1]->file, by_name[i]->file);
  return LZN_OK;
}

/* For a struct filled by hand (files only): the slow way. */
static const lzn_st_tensor *find_linear(const lzn_weights *w, const char *name) {
  for (size_t i = 0; i < w->n_files; i++)
    for (size_t j = 0; j < w->files[i].n_tensors; j++)
      if (strcmp(w->files[i].tensors[j].name, name) == 0) return &w->files[i].tensors[j];
  return NULL;
}

const lzn_st_tensor *lzn_weights_find(const lzn_weights *w, const char *name) {
  if (w == NULL || name == NULL) return NULL;
  if (w->by_name == NULL) return find_linear(w, name);
  const lzn_st_tensor key = {.name = (char *)name};
  const lzn_st_tensor *key_ptr = &key;
  const lzn_st_tensor *const *found =
      bsearch(&key_ptr, w->by_name, w->n_tensors, sizeof *w->by_name, compare_tensor_names);
  return found != NULL ? *found : NULL;
}

static lzn_status open_single(const char *path, int use_mmap, lzn_weights *w) {
  w->files = calloc(1, sizeof *w->files);
  if (w->files == NULL) return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate a file entry", path);
  w->n_files = 1;
  return lzn_st_open(path, use_mmap, &w->files[0]);
}

/* Every tensor of the weight_map must be in the shard the map names. Shards
 * were opened as dir + "/" + shard, so the name follows the folder's prefix. */
static lzn_status check_weight_map(const char *index_path, size_t dir_len, json_t *map,
                                   const lzn_weights *w) {
  const char *tensor;
  json_t *shard;
  json_object_foreach(map, tensor, shard) {
    const lzn_st_tensor *t = lzn_weights_find(w, tensor);
    const char *named = json_string_value(shard);
    if (t == NULL)
      return lzn_fail(LZN_ERR_FORMAT, "%s: weight_map puts tensor \"%s\" in shard \"%s\", but no shard holds it",
                      index_path, tensor, named);
    if (strcmp(t->file + dir_len + 1, named) != 0)
      return lzn_fail(LZN_ERR_FORMAT, "%s: weight_map puts tensor \"%s\" in shard \"%s\", but it is in %s",
                      index_path, tensor, named, t->file);
  }
  return LZN_OK;
}

/* Opens every shard. A failure to open one is reported with the index that
 * named it, so the reader knows why that file was wanted. */
static lzn_status open_shards(const char *dir, const char *index_path, char **shards,
                              size_t n_shards, int use_mmap, lzn_weights *w) {
  w->files = calloc(n_shards, sizeof *w->files);
  if (w->files == NULL) return lzn_fail(LZN_ERR_NOMEM, "cannot allocate %zu shard entries", n_shards);
  for (size_t i = 0; i < n_shards; i++) {
    char *shard_path = join_path(dir, shards[i]);
    if (shard_path == NULL) return lzn_fail(LZN_ERR_NOMEM, "cannot allocate the path of shard \"%s\"", shards[i]);
    w->n_files = i + 1; /* so lzn_weights_close releases this one too */
    const lzn_status status = lzn_st_open(shard_path, use_mmap, &w->files[i]);
    free(shard_path);
    if (status == LZN_ERR_IO) {
      char message[512];
      snprintf(message, sizeof message, "%s", lzn_last_error());
      return lzn_fail(status, "%s (shard \"%s\" listed in %s)", message, shards[i], index_path);
    }
    if (status != LZN_OK) return status;
  }
  return LZN_OK;
}

static lzn_status open_sharded(const char *dir, const char *index_path, int use_mmap,
                               lzn_weights *w) {
  char *json;
  size_t len;
  lzn_status status = lzn_read_file(index_path, &json, &len);
  if (status != LZN_OK) return status;
  json_t *map = NULL;
  char **shards = NULL;
  size_t n_shards = 0;
  status = load_weight_map(json, len, index_path, &map);
  free(json);
  if (status == LZN_OK) status = collect_shards(index_path, map, &shards, &n_shards);
  if (status == LZN_OK) status = open_shards(dir, index_path, shards, n_shards, use_mmap, w);
  if (status == LZN_OK) status = index_tensor_names(w);
  if (status == LZN_OK) status = check_weight_map(index_path, strlen(dir), map, w);
  lzn_st_index_free(shards, n_shards);
  json_decref(map);
  return status;
}

static int path_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static lzn_status open_folder(const char *dir, int use_mmap, lzn_weights *w) {
  char *single = join_path(dir, "model.safetensors");
  char *index = join_path(dir, "model.safetensors.index.json");
  lzn_status status;
  if (single == NULL || index == NULL)
    status = lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate the paths of the weights", dir);
  else if (path_exists(single))
    status = open_single(single, use_mmap, w);
  else if (path_exists(index))
    status = open_sharded(dir, index, use_mmap, w);
  else
    status = lzn_fail(LZN_ERR_IO, "no model.safetensors or model.safetensors.index.json in %s", dir);
  if (status == LZN_OK && w->by_name == NULL) status = index_tensor_names(w);
  free(single);
  free(index);
  return status;
}

lzn_status lzn_weights_open(const char *path, int use_mmap, lzn_weights *out) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (path == NULL || out == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_weights_open: path and out must not be NULL");
  struct stat st;
  if (stat(path, &st) != 0) return lzn_fail(LZN_ERR_IO, "%s: %s", path, strerror(errno));
  lzn_status status;
  if (S_ISDIR(st.st_mode)) {
    status = open_folder(path, use_mmap, out);
  } else {
    status = open_single(path, use_mmap, out);
    if (status == LZN_OK) status = index_tensor_names(out);
  }
  if (status != LZN_OK) lzn_weights_close(out);
  return status;
}

void lzn_weights_close(lzn_weights *w) {
  if (w == NULL) return;
  for (size_t i = 0; i < w->n_files; i++) lzn_st_close(&w->files[i]);
  free(w->files);
  free((void *)w->by_name);
  memset(w, 0, sizeof *w);
}
