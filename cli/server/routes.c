/*
 * routes.c: which handler answers a request, and the small endpoints:
 * GET /health, GET /v1/models, GET /metrics, POST /slots/{id}?action=.
 * Errors are OpenAI's error object, {"error": {"message", "type",
 * "code"}}, with code the HTTP status as llama-server sends it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "server.h"

void srv_reply_json(srv_reply *reply, int status, json_t *value) {
  reply->status = status;
  reply->content_type = "application/json; charset=utf-8";
  reply->body = value ? json_dumps(value, JSON_COMPACT) : NULL;
  reply->len = reply->body ? strlen(reply->body) : 0;
  json_decref(value);
}

void srv_reply_error(srv_reply *reply, int status, const char *type, const char *fmt, ...) {
  char message[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  srv_reply_json(reply, status, json_pack("{s:{s:s, s:s, s:i}}", "error", "message", message, "type",
                                          type, "code", status));
}

static void health(srv_app *app, srv_reply *reply) {
  if (!atomic_load(&app->ready))
    return srv_reply_error(reply, 503, "unavailable_error", "Loading model");
  const sched_stats st = sched_get_stats(app->sched);
  if (atomic_load(&app->stopping) || sched_full(app->sched)) {
    srv_reply_error(reply, 503, "unavailable_error", atomic_load(&app->stopping)
                    ? "the server is shutting down" : "every slot is busy and the queue is full");
    reply->header_name = "Retry-After";
    snprintf(reply->header_value, sizeof reply->header_value, "1");
    return;
  }
  srv_reply_json(reply, 200, json_pack("{s:s, s:i, s:i, s:i}", "status", "ok", "slots_idle",
                                       st.n_slots - st.active_slots, "slots_processing",
                                       st.active_slots, "queue", st.waiting));
}

static void models(srv_app *app, srv_reply *reply) {
  srv_reply_json(reply, 200, json_pack("{s:s, s:[{s:s, s:s, s:I, s:s, s:{s:s, s:i, s:i, s:s}}]}",
                                       "object", "list", "data", "id", app->model_name, "object",
                                       "model", "created", (json_int_t)app->created, "owned_by",
                                       "lazyneuron", "meta", "architecture", app->info.architecture,
                                       "n_ctx", app->n_ctx, "vocab_size", app->info.vocab_size,
                                       "chat_template", app->chat_family));
}

static void metrics(srv_app *app, srv_reply *reply) {
  reply->status = 200;
  reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
  reply->body = srv_metrics_text(app, &reply->len);
}

/* A slot file's name: letters, digits, '.', '-', '_', not starting with
 * '.': it cannot leave --slot-save-path. */
static int safe_file_name(const char *name) {
  if (!name[0] || name[0] == '.' || strlen(name) > 200) return 0;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '.' || *p == '-' || *p == '_'))
      return 0;
  return 1;
}

/* POST /slots/{id}?action=save|restore with {"filename": NAME}. */
static void slots(srv_app *app, const srv_http_request *req, int slot, srv_reply *reply) {
  if (!app->opt.slot_save_path)
    return srv_reply_error(reply, 501, "not_supported_error", "slot save and restore need --slot-save-path");
  const char *action = req->action;
  if (!action || (strcmp(action, "save") != 0 && strcmp(action, "restore") != 0))
    return srv_reply_error(reply, 400, "invalid_request_error", "?action= must be save or restore");
  json_error_t jerr;
  json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
  const json_t *name = json_object_get(body, "filename");
  if (!json_is_string(name) || !safe_file_name(json_string_value(name))) {
    json_decref(body);
    return srv_reply_error(reply, 400, "invalid_request_error", "the body must be {\"filename\": NAME}, "
                           "NAME of letters, digits, '.', '-' and '_', not starting with '.'");
  }
  char path[4096], error[256];
  snprintf(path, sizeof path, "%s/%s", app->opt.slot_save_path, json_string_value(name));
  int n_tokens = 0;
  size_t n_bytes = 0;
  const double t0 = sched_now();
  const int restore = strcmp(action, "restore") == 0;
  const sched_status st = restore ? sched_slot_restore(app->sched, slot, path, &n_tokens, &n_bytes, error)
                                  : sched_slot_save(app->sched, slot, path, &n_tokens, &n_bytes, error);
  const double ms = 1000 * (sched_now() - t0);
  if (st == SCHED_OK)
    srv_reply_json(reply, 200, json_pack("{s:i, s:O, s:i, s:I, s:{s:f}}", "id_slot", slot, "filename", name,
                                         restore ? "n_restored" : "n_saved", n_tokens,
                                         restore ? "n_read" : "n_written", (json_int_t)n_bytes, "timings",
                                         restore ? "restore_ms" : "save_ms", ms));
  else if (st == SCHED_ERR_INVALID)
    srv_reply_error(reply, strstr(error, "processing") ? 409 : 404, "invalid_request_error", "%s", error);
  else if (st == SCHED_ERR_SHUTDOWN)
    srv_reply_error(reply, 503, "unavailable_error", "%s", error);
  else
    srv_reply_error(reply, restore ? 400 : 500, restore ? "invalid_request_error" : "server_error", "%s", error);
  json_decref(body);
}

/* Which route a path is, and the method it takes. */
typedef enum route { R_NONE, R_HEALTH, R_MODELS, R_METRICS, R_COMPLETIONS, R_CHAT, R_SLOTS } route;

static route route_of(const char *path, const char **method, int *slot) {
  static const struct { const char *path, *method; route r; } table[] = {
      {"/health", "GET", R_HEALTH},           {"/v1/health", "GET", R_HEALTH},
      {"/v1/models", "GET", R_MODELS},        {"/models", "GET", R_MODELS},
      {"/metrics", "GET", R_METRICS},         {"/v1/completions", "POST", R_COMPLETIONS},
      {"/completions", "POST", R_COMPLETIONS}, {"/v1/chat/completions", "POST", R_CHAT},
      {"/chat/completions", "POST", R_CHAT}};
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(path, table[i].path) == 0) return *method = table[i].method, table[i].r;
  if (strncmp(path, "/slots/", 7) == 0) {
    char *end;
    const long id = strtol(path + 7, &end, 10);
    if (path[7] >= '0' && path[7] <= '9' && *end == '\0' && id <= 1 << 20) {
      *slot = (int)id, *method = "POST";
      return R_SLOTS;
    }
  }
  return R_NONE;
}

void srv_route(srv_app *app, const srv_http_request *req, srv_reply *reply) {
  const char *method = NULL;
  int slot = -1;
  const route r = route_of(req->path, &method, &slot);
  if (r == R_NONE)
    return srv_reply_error(reply, 404, "not_found_error", "no route %s %.200s", req->method, req->path);
  if (strcmp(req->method, method) != 0) {
    srv_reply_error(reply, 405, "invalid_request_error", "%.200s takes %s, not %s", req->path, method,
                    req->method);
    reply->header_name = "Allow";
    snprintf(reply->header_value, sizeof reply->header_value, "%s", method);
    return;
  }
  if (r == R_HEALTH) return health(app, reply);
  if (!atomic_load(&app->ready)) {
    srv_reply_error(reply, 503, "unavailable_error", "Loading model");
    reply->header_name = "Retry-After";
    snprintf(reply->header_value, sizeof reply->header_value, "1");
    return;
  }
  switch (r) {
  case R_MODELS: return models(app, reply);
  case R_METRICS: return metrics(app, reply);
  case R_COMPLETIONS: return srv_completions(app, req, 0, reply);
  case R_CHAT: return srv_completions(app, req, 1, reply);
  case R_SLOTS: return slots(app, req, slot, reply);
  default: return;
  }
}
