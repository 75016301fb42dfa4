/*
 * opt.c: OPT (transformers' OPTForCausalLM) -> the model description.
 *
 * Tensors are looked up by their Hugging Face names, with or without the
 * "model." prefix, and every shape is checked against config.json. OPT's
 * one-time quirks: learned positions start at row 2 (a fairseq legacy);
 * do_layer_norm_before = false means post-LN (OPT-350m); the decoder has a
 * final layer norm only when pre-LN and not _remove_final_layer_norm;
 * word_embed_proj_dim != hidden_size adds project_in / project_out. The
 * same model comes from a GGUF file too (lzn-convert: opt_gguf.c reads its
 * config, the tensors have GGUF names below).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arch.h"
#include "arch/opt_config.h"
#include "arch/tensors.h"
#include "cpu/cpu.h"

#define LZN_OPT_LAYER_NORM_EPS 1e-5
#define LZN_OPT_POSITION_OFFSET 2
/* Tensors per layer, for the progress callback. */
#define LZN_OPT_TENSORS_PER_LAYER 16

/* The tensor names of each format, by role. Hugging Face's sit under a
 * prefix find_prefix finds ("model.decoder." or "decoder."), except the
 * LM head; GGUF's (lzn-convert) follow llama.cpp's naming of GPT-2-like
 * architectures. */
typedef struct opt_names {
  const char *embed, *positions, *project_in, *project_out, *final_norm_w, *final_norm_b, *lm_head;
  const char *layer; /* layer i's tensors are layer + i + "." + one of these: */
  const char *attn_norm_w, *attn_norm_b, *q, *k, *v, *o, *q_b, *k_b, *v_b, *o_b;
  const char *mlp_norm_w, *mlp_norm_b, *up, *up_b, *down, *down_b, *down_t; /* down_t: NULL if none */
} opt_names;

static const opt_names hf_names = {
    "embed_tokens.weight", "embed_positions.weight", "project_in.weight", "project_out.weight",
    "final_layer_norm.weight", "final_layer_norm.bias", "lm_head.weight", "layers.",
    "self_attn_layer_norm.weight", "self_attn_layer_norm.bias", "self_attn.q_proj.weight",
    "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.out_proj.weight",
    "self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias",
    "self_attn.out_proj.bias", "final_layer_norm.weight", "final_layer_norm.bias", "fc1.weight",
    "fc1.bias", "fc2.weight", "fc2.bias", NULL};

static const opt_names gguf_names = {
    "token_embd.weight", "position_embd.weight", "proj_in.weight", "proj_out.weight",
    "output_norm.weight", "output_norm.bias", "output.weight", "blk.",
    "attn_norm.weight", "attn_norm.bias", "attn_q.weight", "attn_k.weight", "attn_v.weight",
    "attn_output.weight", "attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_output.bias",
    "ffn_norm.weight", "ffn_norm.bias", "ffn_up.weight", "ffn_up.bias", "ffn_down.weight",
    "ffn_down.bias", "ffn_down_t.weight"};

static const opt_names *names_of(const lzn_model *m) { return m->from_gguf ? &gguf_names : &hf_names; }

static lzn_status bind_layer(lzn_binder *b, const void *config, int i, lzn_layer *layer) {
  const lzn_opt_config *c = config;
  const opt_names *names = names_of(b->model);
  const int64_t d = c->hidden_size, f = c->ffn_dim;
  const int bias = c->enable_bias, affine = c->layer_norm_elementwise_affine;
  char n[128];
  lzn_status s = LZN_OK;
#define NAME(suffix) (snprintf(n, sizeof n, "%s%d.%s", names->layer, i, suffix), n)
#define VECTOR(suffix, required, len, dst) \
  if (s == LZN_OK) s = lzn_bind_f32(b, NAME(suffix), required, len, 0, dst)
#define MATRIX(suffix, rows, cols, dst) \
  if (s == LZN_OK) s = lzn_bind_matrix(b, NAME(suffix), 1, rows, cols, dst)
  VECTOR(names->attn_norm_w, affine, d, &layer->attn_norm.weight);
  VECTOR(names->attn_norm_b, affine, d, &layer->attn_norm.bias);
  MATRIX(names->q, d, d, &layer->q);
  MATRIX(names->k, d, d, &layer->k);
  MATRIX(names->v, d, d, &layer->v);
  MATRIX(names->o, d, d, &layer->o);
  VECTOR(names->q_b, bias, d, &layer->q_b);
  VECTOR(names->k_b, bias, d, &layer->k_b);
  VECTOR(names->v_b, bias, d, &layer->v_b);
  VECTOR(names->o_b, bias, d, &layer->o_b);
  VECTOR(names->mlp_norm_w, affine, d, &layer->mlp_norm.weight);
  VECTOR(names->mlp_norm_b, affine, d, &layer->mlp_norm.bias);
  MATRIX(names->up, f, d, &layer->up);
  VECTOR(names->up_b, bias, f, &layer->up_b);
  VECTOR(names->down_b, bias, d, &layer->down_b);
  if (s == LZN_OK && names->down_t && lzn_model_find_tensor(b->model, NAME(names->down_t))) {
    /* Stored transposed already (lzn-convert, lzn-quantize): mapped in place. */
    s = lzn_bind_matrix(b, NAME(names->down_t), 1, f, d, &layer->down_t);
    layer->down = lzn_matrix_make(layer->down_t.type, NULL, d, f);
  } else if (s == LZN_OK) {
    s = lzn_bind_transposed(b, NAME(names->down), d, f, &layer->down_t, &layer->down);
  }
#undef MATRIX
#undef VECTOR
#undef NAME
  return s;
}

static lzn_status find_prefix(lzn_binder *b) {
  if (b->model->from_gguf) return LZN_OK; /* GGUF names have no prefix */
  static const char *const prefixes[] = {"model.decoder.", "decoder."};
  for (size_t i = 0; i < 2; i++) {
    char name[64];
    snprintf(name, sizeof name, "%sembed_tokens.weight", prefixes[i]);
    if (lzn_model_find_tensor(b->model, name)) {
      b->prefix = prefixes[i];
      return LZN_OK;
    }
  }
  return lzn_fail(LZN_ERR_FORMAT, "tensor \"model.decoder.embed_tokens.weight\" (or "
                  "\"decoder.embed_tokens.weight\") is missing: not an OPT checkpoint?");
}

static lzn_status bind_tensors(lzn_binder *b, const lzn_opt_config *c) {
  lzn_model *m = b->model;
  const opt_names *names = names_of(m);
  const int64_t d = c->hidden_size, e = c->word_embed_proj_dim, v = c->vocab_size;
  const int affine = c->layer_norm_elementwise_affine;
  lzn_status s = find_prefix(b);
  if (s == LZN_OK) s = lzn_bind_matrix(b, names->embed, 1, v, e, &m->embed_tokens);
  if (s == LZN_OK)
    s = lzn_bind_f32(b, names->positions, 1, c->max_position_embeddings + LZN_OPT_POSITION_OFFSET,
                     d, &m->embed_positions);
  if (s == LZN_OK && e != d) s = lzn_bind_matrix(b, names->project_in, 1, d, e, &m->project_in);
  if (s == LZN_OK && e != d) s = lzn_bind_matrix(b, names->project_out, 1, e, d, &m->project_out);
  if (s == LZN_OK && m->has_final_norm) {
    s = lzn_bind_f32(b, names->final_norm_w, affine, d, 0, &m->final_norm.weight);
    if (s == LZN_OK) s = lzn_bind_f32(b, names->final_norm_b, affine, d, 0, &m->final_norm.bias);
  }
  if (s == LZN_OK) s = lzn_bind_layers(b, c, bind_layer);
  if (s != LZN_OK) return s;
  if (c->tie_word_embeddings) {
    m->lm_head = m->embed_tokens;
    return LZN_OK;
  }
  /* lm_head sits outside the decoder: no "decoder." in its name. */
  b->prefix = "";
  return lzn_bind_matrix(b, names->lm_head, 1, v, e, &m->lm_head);
}

void lzn_opt_describe(lzn_model *m, const lzn_opt_config *c) {
  m->arch.name = "opt";
  m->arch.norm = LZN_NORM_LAYER;
  m->arch.norm_eps = LZN_OPT_LAYER_NORM_EPS;
  m->arch.norm_before = c->do_layer_norm_before;
  m->arch.positions = LZN_POSITIONS_LEARNED;
  m->arch.position_offset = LZN_OPT_POSITION_OFFSET;
  m->arch.mlp = LZN_MLP_KIND_RELU;
  m->d_model = c->hidden_size, m->d_ff = c->ffn_dim, m->n_heads = c->num_attention_heads;
  m->n_kv_heads = c->num_attention_heads;
  m->head_dim = c->hidden_size / c->num_attention_heads, m->n_layers = c->num_hidden_layers;
  m->vocab = c->vocab_size, m->d_embed = c->word_embed_proj_dim;
  m->max_positions = c->max_position_embeddings;
  /* Hugging Face builds the decoder's final layer norm only for pre-LN models. */
  m->has_final_norm = c->do_layer_norm_before && !c->remove_final_layer_norm;
}

lzn_status lzn_opt_build(lzn_model *m, const lzn_opt_config *config,
                         const lzn_model_params *params) {
  const lzn_opt_config c = *config;
  lzn_opt_describe(m, &c);
  const lzn_kernel_table *kernels;
  lzn_status s = lzn_kernels_get(&kernels);
  if (s != LZN_OK) return s;
  lzn_binder b = {.model = m, .prefix = "", .progress = {.params = params, .done = 0},
                  .kernels = kernels, .want = params->weight_type, .down_t_want = params->down_t_type,
                  .n_threads = params->n_threads};
  b.progress.total = 2 + 2 * (m->d_embed != m->d_model) + 2 * m->has_final_norm +
                     LZN_OPT_TENSORS_PER_LAYER * m->n_layers + !c.tie_word_embeddings;
  return bind_tensors(&b, &c);
}
