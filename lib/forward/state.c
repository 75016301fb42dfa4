/*
 * state.c: a context's sequence as bytes (lzn_context_state_size / save /
 * load), so a server can park a conversation on disk and bring it back.
 *
 * Layout, little-endian as the machine writes it (x86-64 only):
 *   char magic[8] = "LZNSTATE"; uint32 version = 1;
 *   uint32 n_layers, n_kv_heads, head_dim, d_model, vocab, kv_type (the
 *          public lzn_kv_type), kv_row_bytes;
 *   uint32 n_past;
 *   uint64 checksum: FNV-1a 64 of the payload;
 *   payload: for each layer, for each KV head, its n_past K rows then its
 *            n_past V rows (kv_row_bytes each), as the cache keeps them.
 * Only the first n_past positions are written, so a short sequence in a
 * long context saves little. The shape fields are the check "against the
 * model": a state is loaded only into a context of a model of the same
 * shape and KV type (two models of one shape with other weights cannot be
 * told apart).
 */
#include <string.h>

#include "core/errors.h"
#include "forward/context.h"

#define STATE_MAGIC "LZNSTATE"
#define STATE_VERSION 1u

typedef struct state_header {
  char magic[8];
  uint32_t version;
  uint32_t n_layers, n_kv_heads, head_dim, d_model, vocab, kv_type, kv_row_bytes;
  uint32_t n_past;
  uint64_t checksum;
} state_header;

static state_header header_of(const lzn_context *ctx) {
  const lzn_model *m = ctx->model;
  state_header h;
  memset(&h, 0, sizeof h);
  memcpy(h.magic, STATE_MAGIC, 8);
  h.version = STATE_VERSION;
  h.n_layers = (uint32_t)m->n_layers, h.n_kv_heads = (uint32_t)m->n_kv_heads;
  h.head_dim = (uint32_t)m->head_dim, h.d_model = (uint32_t)m->d_model, h.vocab = (uint32_t)m->vocab;
  h.kv_type = (uint32_t)ctx->kv.type, h.kv_row_bytes = (uint32_t)ctx->kv.row_bytes;
  h.n_past = (uint32_t)ctx->kv.n_past;
  return h;
}

static size_t payload_bytes(const lzn_context *ctx, int n_past) {
  const lzn_model *m = ctx->model;
  return 2 * (size_t)m->n_layers * (size_t)m->n_kv_heads * (size_t)n_past * ctx->kv.row_bytes;
}

static uint64_t fnv1a(uint64_t h, const void *bytes, size_t n) {
  const unsigned char *p = bytes;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

/* Runs over the cache's (layer, head, K|V) runs of n_past rows in file
 * order, copying to or from the payload. */
static uint64_t walk(const lzn_context *ctx, int n_past, char *to_payload, const char *from_payload) {
  const lzn_model *m = ctx->model;
  const size_t run = (size_t)n_past * ctx->kv.row_bytes;
  uint64_t h = 0xcbf29ce484222325ull;
  size_t at = 0;
  for (int l = 0; l < m->n_layers; l++)
    for (int kh = 0; kh < m->n_kv_heads; kh++)
      for (int kv = 0; kv < 2; kv++) {
        char *row = lzn_kv_row(&ctx->kv, kv ? ctx->kv.v : ctx->kv.k, l, kh, 0);
        if (to_payload) memcpy(to_payload + at, row, run);
        if (from_payload) memcpy(row, from_payload + at, run);
        h = fnv1a(h, row, run);
        at += run;
      }
  return h;
}

LZN_API int64_t lzn_context_state_size(const lzn_context *ctx) {
  if (ctx == NULL) return -1;
  return (int64_t)(sizeof(state_header) + payload_bytes(ctx, ctx->kv.n_past));
}

LZN_API lzn_status lzn_context_state_save(const lzn_context *ctx, void *buf, size_t capacity,
                                          size_t *written) {
  const char *fn = "lzn_context_state_save";
  if (written) *written = 0;
  if (ctx == NULL || written == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: %s is NULL", fn, ctx ? "written" : "ctx");
  const size_t need = (size_t)lzn_context_state_size(ctx);
  if (buf == NULL || capacity < need) {
    *written = need;
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: capacity %zu is too small: the state takes %zu bytes",
                    fn, capacity, need);
  }
  state_header h = header_of(ctx);
  h.checksum = walk(ctx, ctx->kv.n_past, (char *)buf + sizeof h, NULL);
  memcpy(buf, &h, sizeof h);
  *written = need;
  return LZN_OK;
}

LZN_API lzn_status lzn_context_state_load(lzn_context *ctx, const void *buf, size_t size) {
  const char *fn = "lzn_context_state_load";
  if (ctx == NULL || (buf == NULL && size > 0))
    return lzn_fail(LZN_ERR_INVALID_ARG, "%s: %s is NULL", fn, ctx ? "buf" : "ctx");
  state_header h;
  if (size < sizeof h)
    return lzn_fail(LZN_ERR_FORMAT, "%s: %zu bytes are shorter than a state's %zu-byte header", fn,
                    size, sizeof h);
  memcpy(&h, buf, sizeof h);
  if (memcmp(h.magic, STATE_MAGIC, 8) != 0)
    return lzn_fail(LZN_ERR_FORMAT, "%s: not a lazyneuron context state (no \"" STATE_MAGIC "\")", fn);
  if (h.version != STATE_VERSION)
    return lzn_fail(LZN_ERR_UNSUPPORTED, "%s: state version %u; this library reads version %u", fn,
                    h.version, STATE_VERSION);
  const state_header mine = header_of(ctx);
  const struct { const char *name; uint32_t theirs, ours; } fields[] = {
      {"n_layers", h.n_layers, mine.n_layers},       {"n_kv_heads", h.n_kv_heads, mine.n_kv_heads},
      {"head_dim", h.head_dim, mine.head_dim},       {"d_model", h.d_model, mine.d_model},
      {"vocab", h.vocab, mine.vocab},                {"kv_type", h.kv_type, mine.kv_type},
      {"kv_row_bytes", h.kv_row_bytes, mine.kv_row_bytes}};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (fields[i].theirs != fields[i].ours)
      return lzn_fail(LZN_ERR_INVALID_ARG, "%s: the state is of another model or KV type: its %s is "
                      "%u, this context's %u", fn, fields[i].name, fields[i].theirs, fields[i].ours);
  if (h.n_past > (uint32_t)ctx->kv.n_ctx)
    return lzn_fail(LZN_ERR_CONTEXT_FULL, "%s: the state holds %u tokens, the context %d", fn,
                    h.n_past, ctx->kv.n_ctx);
  const size_t need = sizeof h + payload_bytes(ctx, (int)h.n_past);
  if (size != need)
    return lzn_fail(LZN_ERR_FORMAT, "%s: %zu bytes; a state of %u tokens takes %zu", fn, size,
                    h.n_past, need);
  const char *payload = (const char *)buf + sizeof h;
  if (fnv1a(0xcbf29ce484222325ull, payload, need - sizeof h) != h.checksum)
    return lzn_fail(LZN_ERR_FORMAT, "%s: the checksum does not match: the state is corrupt", fn);
  walk(ctx, (int)h.n_past, NULL, payload);
  ctx->kv.n_past = (int)h.n_past;
  return LZN_OK;
}
