/*
 * llama.c: the LLaMA family (LlamaForCausalLM, MistralForCausalLM,
 * BambooForCausalLM) -> the model description.
 *
 * Pre-norm RMSNorm blocks, rotary positions (rotate-half, as Hugging Face
 * applies them), grouped-query attention, and the gated MLP
 * down(act(gate x) * up x) whose gate decides which neurons run. Tensor
 * names are Hugging Face's (model.layers.N.self_attn.q_proj.weight, ...).
 */
#include <stdio.h>
#include <string.h>

#include "arch/arch.h"
#include "arch/tensors.h"
#include "cpu/cpu.h"

/* Tensors per layer, for the progress callback. */
#define LZN_LLAMA_TENSORS_PER_LAYER 9

static lzn_status bind_layer(lzn_binder *b, const void *config, int i, lzn_layer *layer) {
  const lzn_llama_config *c = config;
  const int64_t d = c->hidden_size, f = c->intermediate_size;
  const int64_t q_dim = (int64_t)c->num_attention_heads * c->head_dim;
  const int64_t kv_dim = (int64_t)c->num_key_value_heads * c->head_dim;
  const int bias = c->attention_bias;
  char n[128];
  lzn_status s = LZN_OK;
#define NAME(suffix) (snprintf(n, sizeof n, "layers.%d.%s", i, suffix), n)
#define VECTOR(suffix, required, len, dst) \
  if (s == LZN_OK) s = lzn_bind_f32(b, NAME(suffix), required, len, 0, dst)
#define MATRIX(suffix, rows, cols, dst) \
  if (s == LZN_OK) s = lzn_bind_matrix(b, NAME(suffix), 1, rows, cols, dst)
  VECTOR("input_layernorm.weight", 1, d, &layer->attn_norm.weight);
  MATRIX("self_attn.q_proj.weight", q_dim, d, &layer->q);
  MATRIX("self_attn.k_proj.weight", kv_dim, d, &layer->k);
  MATRIX("self_attn.v_proj.weight", kv_dim, d, &layer->v);
  MATRIX("self_attn.o_proj.weight", d, q_dim, &layer->o);
  VECTOR("self_attn.q_proj.bias", bias, q_dim, &layer->q_b);
  VECTOR("self_attn.k_proj.bias", bias, kv_dim, &layer->k_b);
  VECTOR("self_attn.v_proj.bias", bias, kv_dim, &layer->v_b);
  VECTOR("self_attn.o_proj.bias", bias, d, &layer->o_b);
  VECTOR("post_attention_layernorm.weight", 1, d, &layer->mlp_norm.weight);
  MATRIX("mlp.gate_proj.weight", f, d, &layer->gate);
  MATRIX("mlp.up_proj.weight", f, d, &layer->up);
  if (s == LZN_OK) s = lzn_bind_transposed(b, NAME("mlp.down_proj.weight"), d, f, &layer->down_t, &layer->down);
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
  lzn_binder b = {.model = m, .prefix = "model.", .progress = {.params = params, .done = 0},
                  .kernels = kernels, .want = params->weight_type};
  b.progress.total = 2 + LZN_LLAMA_TENSORS_PER_LAYER * m->n_layers + !c->tie_word_embeddings;
  const int64_t d = c->hidden_size, v = c->vocab_size;
  s = lzn_bind_matrix(&b, "embed_tokens.weight", 1, v, d, &m->embed_tokens);
  if (s == LZN_OK) s = lzn_bind_f32(&b, "norm.weight", 1, d, 0, &m->final_norm.weight);
  if (s == LZN_OK) s = lzn_bind_layers(&b, c, bind_layer);
  if (s != LZN_OK) return s;
  if (c->tie_word_embeddings) {
    m->lm_head = m->embed_tokens;
    return LZN_OK;
  }
  b.prefix = "";
  return lzn_bind_matrix(&b, "lm_head.weight", 1, v, d, &m->lm_head);
}
