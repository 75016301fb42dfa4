/*
 * llama.c: the LLaMA family (LlamaForCausalLM, MistralForCausalLM,
 * BambooForCausalLM) -> the model description.
 *
 * Pre-norm RMSNorm blocks, rotary positions (rotate-half, as Hugging Face
 * applies them), grouped-query attention, and the gated MLP
 * down(act(gate x) * up x) whose gate decides which neurons run. Tensor
 * names are Hugging Face's (model.layers.N.self_attn.q_proj.weight, ...) or
 * GGUF's (blk.N.attn_q.weight, ...). A GGUF file from llama.cpp's converter
 * holds q and k rows in its pairwise rotary order: they are put back in
 * Hugging Face's (tensors.h); PowerInfer's pre-transposed ffn_down_t is
 * used as W_down^T as it is.
 */
#include <stdio.h>
#include <string.h>

#include "arch/arch.h"
#include "arch/tensors.h"
#include "cpu/cpu.h"

/* Tensors per layer, for the progress callback. */
#define LZN_LLAMA_TENSORS_PER_LAYER 9

/* The tensor names of each format, by role. */
typedef struct llama_names {
  const char *prefix, *embed, *final_norm, *lm_head;
  const char *layer; /* layer i's tensors are layer + i + "." + one of these: */
  const char *attn_norm, *q, *k, *v, *o, *q_bias, *k_bias, *v_bias, *o_bias;
  const char *mlp_norm, *gate, *up, *down, *down_t; /* down_t: NULL when the format has none */
} llama_names;

static const llama_names hf_names = {
    "model.", "embed_tokens.weight", "norm.weight", "lm_head.weight", "layers.",
    "input_layernorm.weight", "self_attn.q_proj.weight",
    "self_attn.k_proj.weight", "self_attn.v_proj.weight",
    "self_attn.o_proj.weight", "self_attn.q_proj.bias",
    "self_attn.k_proj.bias", "self_attn.v_proj.bias",
    "self_attn.o_proj.bias", "post_attention_layernorm.weight",
    "mlp.gate_proj.weight", "mlp.up_proj.weight",
    "mlp.down_proj.weight", NULL};

static const llama_names gguf_names = {
    "", "token_embd.weight", "output_norm.weight", "output.weight", "blk.",
    "attn_norm.weight", "attn_q.weight", "attn_k.weight",
    "attn_v.weight", "attn_output.weight", "attn_q.bias",
    "attn_k.bias", "attn_v.bias", "attn_output.bias",
    "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
    "ffn_down.weight", "ffn_down_t.weight"};

static lzn_status bind_layer(lzn_binder *b, const void *config, int i, lzn_layer *layer) {
  const lzn_llama_config *c = config;
  const llama_names *names = b->model->from_gguf ? &gguf_names : &hf_names;
  const int64_t d = c->hidden_size, f = c->intermediate_size;
  const int64_t q_dim = (int64_t)c->num_attention_heads * c->head_dim;
  const int64_t kv_dim = (int64_t)c->num_key_value_heads * c->head_dim;
  const int bias = c->attention_bias;
  char n[128];
  lzn_status s = LZN_OK;
#define NAME(suffix) (snprintf(n, sizeof n, "%s%d.%s", names->layer, i, suffix), n)
#define VECTOR(suffix, required, len, dst) \
  if (s == LZN_OK) s = lzn_bind_f32(b, NAME(suffix), required, len, 0, dst)
#define MATRIX(suffix, rows, cols, dst) \
  if (s == LZN_OK) s = lzn_bind_matrix(b, NAME(suffix), 1, rows, cols, dst)
  VECTOR(names->attn_norm, 1, d, &layer->attn_norm.weight);
  if (c->rope_rows_interleaved) {
    if (s == LZN_OK) s = lzn_bind_matrix_rope_permuted(b, NAME(names->q), q_dim, d, c->head_dim, &layer->q);
    if (s == LZN_OK) s = lzn_bind_matrix_rope_permuted(b, NAME(names->k), kv_dim, d, c->head_dim, &layer->k);
  } else {
    MATRIX(names->q, q_dim, d, &layer->q);
    MATRIX(names->k, kv_dim, d, &layer->k);
  }
  MATRIX(names->v, kv_dim, d, &layer->v);
  MATRIX(names->o, d, q_dim, &layer->o);
  VECTOR(names->q_bias, bias, q_dim, &layer->q_b);
  VECTOR(names->k_bias, bias, kv_dim, &layer->k_b);
  VECTOR(names->v_bias, bias, kv_dim, &layer->v_b);
  VECTOR(names->o_bias, bias, d, &layer->o_b);
  VECTOR(names->mlp_norm, 1, d, &layer->mlp_norm.weight);
  MATRIX(names->gate, f, d, &layer->gate);
  MATRIX(names->up, f, d, &layer->up);
  if (s == LZN_OK && names->down_t && lzn_model_find_tensor(b->model, NAME(names->down_t))) {
    /* Stored transposed already (PowerInfer, lzn-convert --transpose-down):
     * W_down^T is a plain matrix, mapped in place when the type allows. */
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

void lzn_llama_describe(lzn_model *m, const lzn_llama_config *c) {
  /* A static name: the config does not outlive the load. */
  static const char *const names[] = {"mistral", "bamboo"};
  m->arch.name = "llama";
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(c->architecture, names[i]) == 0) m->arch.name = names[i];
  m->arch.norm = LZN_NORM_RMS;
  m->arch.norm_eps = c->rms_norm_eps;
  m->arch.norm_before = 1;
  m->arch.positions = LZN_POSITIONS_ROPE;
  m->arch.rope_theta = c->rope_theta;
  m->arch.rope_position_scale = 1.0 / c->rope_linear_factor;
  m->arch.mlp = LZN_MLP_KIND_GATED;
  m->arch.activation = c->activation;
  m->arch.activation_threshold = (float)c->activation_threshold;
  m->d_model = c->hidden_size, m->d_ff = c->intermediate_size;
  m->n_heads = c->num_attention_heads, m->n_kv_heads = c->num_key_value_heads;
  m->head_dim = c->head_dim, m->n_layers = c->num_hidden_layers;
  m->vocab = c->vocab_size, m->d_embed = c->hidden_size;
  m->max_positions = c->max_position_embeddings;
  m->has_final_norm = 1;
}

lzn_status lzn_llama_build(lzn_model *m, const lzn_llama_config *c, const lzn_model_params *params) {
  lzn_llama_describe(m, c);
  const lzn_kernel_table *kernels;
  lzn_status s = lzn_kernels_get(&kernels);
  if (s != LZN_OK) return s;
  const llama_names *names = m->from_gguf ? &gguf_names : &hf_names;
  lzn_binder b = {.model = m, .prefix = names->prefix, .progress = {.params = params, .done = 0},
                  .kernels = kernels, .want = params->weight_type, .down_t_want = params->down_t_type,
                  .n_threads = params->n_threads};
  b.progress.total = 2 + LZN_LLAMA_TENSORS_PER_LAYER * m->n_layers + !c->tie_word_embeddings;
  const int64_t d = c->hidden_size, v = c->vocab_size;
  s = lzn_bind_matrix(&b, names->embed, 1, v, d, &m->embed_tokens);
  if (s == LZN_OK) s = lzn_bind_f32(&b, names->final_norm, 1, d, 0, &m->final_norm.weight);
  if (s == LZN_OK) s = lzn_bind_layers(&b, c, bind_layer);
  if (s != LZN_OK) return s;
  if (c->tie_word_embeddings) {
    m->lm_head = m->embed_tokens;
    return LZN_OK;
  }
  b.prefix = "";
  return lzn_bind_matrix(&b, names->lm_head, 1, v, d, &m->lm_head);
}
