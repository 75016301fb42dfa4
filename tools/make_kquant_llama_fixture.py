#!/usr/bin/python3
"""Writes tests/data/llama-kquant/ and tests/data/llama-kquant-q4_0/: a tiny LLaMA (d_model 256,
d_ff 768, so every row is whole 256-weight super-blocks) as llama.cpp's own llama-quantize writes
it in Q4_K_M (Q4_K, with Q6_K for the output matrix and some V and W_down matrices) and in Q4_0
without --pure (Q4_0, the output matrix Q6_K), each with the float64 PyTorch reference
(tools/llama_reference.py) on the weights that file holds, dequantized by llama.cpp's gguf-py.
What tests/test_kquants.c loads, against what it compares.

    /usr/bin/python3 tools/make_kquant_llama_fixture.py LLAMA_CPP_SRC LLAMA_QUANTIZE [--out DIR]

LLAMA_CPP_SRC: a llama.cpp source tree (its gguf-py writes the F32 file and dequantizes the
quantized one); LLAMA_QUANTIZE: its llama-quantize binary. Both are run once here; the library,
its tests and CI never need them (the output is committed). Deterministic: fixed seeds, and
llama-quantize run on one thread.

The model: random weights (seed below), relu gated MLP ("lazyneuron.activation" relu: llama.cpp
ignores the key), GQA 4 query / 2 KV heads of 64, 2 layers, vocab 256, q and k rows in llama.cpp's
rotary order (the converter's permutation; the loader undoes it, the reference runs on the rows
put back), no tokenizer (the model runs on ids). Files in each folder:
  model.gguf          what llama-quantize wrote
  reference.json      tokens, each tensor's type, active fractions, ... (tests/data/README.md)
  logits.f32          float64 logits of every position, rounded to float32
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_reference as lr  # noqa: E402

SEED = 2301
CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "relu",
    "hidden_size": 256, "intermediate_size": 768, "num_attention_heads": 4, "num_key_value_heads": 2,
    "num_hidden_layers": 2, "vocab_size": 256, "max_position_embeddings": 128, "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0, "tie_word_embeddings": False, "attention_bias": False,
}
N_TOKENS = 24


def import_gguf(src):
    """llama.cpp's gguf-py without its tokenizer dependencies (sentencepiece)."""
    sp = types.ModuleType("sentencepiece")
    sp.SentencePieceProcessor = object
    sys.modules.setdefault("sentencepiece", sp)
    sys.path.insert(0, os.path.join(src, "gguf-py"))
    import gguf  # noqa: E402
    from gguf.quants import dequantize  # noqa: E402
    return gguf, dequantize


def hf_weights(c, rng):
    """Hugging Face names -> float32 arrays; scales keep every layer's output O(1)."""
    H, F, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    hd = H // c["num_attention_heads"]
    W = {"model.embed_tokens.weight": rng.standard_normal((V, H)),
         "model.norm.weight": 1.0 + 0.1 * rng.standard_normal(H),
         "lm_head.weight": rng.standard_normal((V, H)) / np.sqrt(H)}
    for i in range(c["num_hidden_layers"]):
        n = lr.layer_names(i)
        W[n["ln1"]] = 1.0 + 0.1 * rng.standard_normal(H)
        W[n["ln2"]] = 1.0 + 0.1 * rng.standard_normal(H)
        W[n["q"]] = rng.standard_normal((c["num_attention_heads"] * hd, H)) / np.sqrt(H)
        W[n["k"]] = rng.standard_normal((c["num_key_value_heads"] * hd, H)) / np.sqrt(H)
        W[n["v"]] = rng.standard_normal((c["num_key_value_heads"] * hd, H)) / np.sqrt(H)
        W[n["o"]] = rng.standard_normal((H, c["num_attention_heads"] * hd)) / np.sqrt(H)
        W[n["gate"]] = rng.standard_normal((F, H)) / np.sqrt(H)
        W[n["up"]] = rng.standard_normal((F, H)) / np.sqrt(H)
        W[n["down"]] = rng.standard_normal((H, F)) / np.sqrt(F / 2)
    return {k: v.astype(np.float32) for k, v in W.items()}


def to_llama_cpp(w, n_heads):
    """llama.cpp's converter's rotary row order: per head, rows (half, i) -> (i, half)."""
    return w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def from_llama_cpp(w, n_heads):
    return w.reshape(n_heads, w.shape[0] // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_names(c):
    """GGUF name -> (Hugging Face name, rotary heads or 0)."""
    m = {"token_embd.weight": ("model.embed_tokens.weight", 0), "output_norm.weight": ("model.norm.weight", 0),
         "output.weight": ("lm_head.weight", 0)}
    for i in range(c["num_hidden_layers"]):
        n, b = lr.layer_names(i), f"blk.{i}."
        m.update({b + "attn_norm.weight": (n["ln1"], 0), b + "ffn_norm.weight": (n["ln2"], 0),
                  b + "attn_q.weight": (n["q"], c["num_attention_heads"]),
                  b + "attn_k.weight": (n["k"], c["num_key_value_heads"]),
                  b + "attn_v.weight": (n["v"], 0), b + "attn_output.weight": (n["o"], 0),
                  b + "ffn_gate.weight": (n["gate"], 0), b + "ffn_up.weight": (n["up"], 0),
                  b + "ffn_down.weight": (n["down"], 0)})
    return m


def write_f32(gguf, path, c, W):
    H = c["hidden_size"]
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("lazyneuron-llama-kquant")
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(H)
    w.add_block_count(c["num_hidden_layers"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(c["num_attention_heads"])
    w.add_head_count_kv(c["num_key_value_heads"])
    w.add_rope_dimension_count(H // c["num_attention_heads"])
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    w.add_rope_freq_base(c["rope_theta"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_string("lazyneuron.activation", "relu")
    for name, (hf, heads) in gguf_names(c).items():
        x = W[hf]
        w.add_tensor(name, np.ascontiguousarray(to_llama_cpp(x, heads) if heads else x))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def read_dequantized(gguf, dequantize, path, c):
    """The quantized file's weights as float64 torch tensors with Hugging Face names, and each
    tensor's type."""
    r = gguf.GGUFReader(path)
    names, W, kinds = gguf_names(c), {}, {}
    for t in r.tensors:
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        x = dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float64)
        hf, heads = names[t.name]
        W[hf] = torch.from_numpy(from_llama_cpp(x, heads) if heads else x)
        kinds[t.name] = t.tensor_type.name
    return W, kinds


# folder, llama-quantize type, changes to CONFIG. The last: d_model 128, rows that K-quants cannot
# hold (llama-quantize falls back to Q8_0 for its Q6_K output), for the UNSUPPORTED cases.
FILES = [("llama-kquant", "Q4_K_M", {}), ("llama-kquant-q4_0", "Q4_0", {}),
         ("llama-kquant-d128", "Q4_0", {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 1})]


def reference(c, W, kinds, rng_tokens, ftype):
    """reference.json's content and the logits, float64."""
    tokens = [1, 255, 0, 2, 7] + rng_tokens + [255]
    rec = {}
    logits = lr.forward(c, W, tokens, record=rec)
    cache = lr.new_cache(c)
    step = torch.cat([lr.forward(c, W, [t], cache=cache) for t in tokens])
    assert (step - logits).abs().max().item() < 1e-10
    active = [rec[i]["active"] for i in range(c["num_hidden_layers"])]
    ref = {
        "description": f"tiny LLaMA (d_model {c['hidden_size']}, d_ff {c['intermediate_size']}, relu gate, GQA "
                       f"4/2 heads, {c['num_hidden_layers']} layers, vocab 256) quantized by llama.cpp's "
                       f"llama-quantize {ftype}; the float64 reference runs on the weights of that file "
                       "dequantized by gguf-py",
        "tokens": tokens, "n_tokens": len(tokens), "vocab_size": c["vocab_size"],
        "logits_file": "logits.f32", "logits_shape": [len(tokens), c["vocab_size"]],
        "active_fraction": [round(x.double().mean().item(), 6) for x in active],
        "never_fired": [int((~x.any(dim=0)).sum().item()) for x in active],
        "logit_scale": logits.abs().max().item(), "tensor_types": kinds, "config": c, "seed": SEED,
        "decode_check": True,
    }
    return ref, logits


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("llama_cpp_src")
    ap.add_argument("llama_quantize")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "data"))
    a = ap.parse_args(argv)
    gguf, dequantize = import_gguf(a.llama_cpp_src)
    torch.set_num_threads(1)
    for folder, ftype, changes in FILES:
        c = dict(CONFIG, **changes)
        rng = np.random.default_rng(SEED)
        W32 = hf_weights(c, rng)
        rng_tokens = rng.integers(0, c["vocab_size"], N_TOKENS - 6).tolist()
        with tempfile.TemporaryDirectory() as tmp:
            f32 = os.path.join(tmp, "model-f32.gguf")
            write_f32(gguf, f32, c, W32)
            out = os.path.join(a.out, folder)
            os.makedirs(out, exist_ok=True)
            quantized = os.path.join(out, "model.gguf")
            subprocess.run([a.llama_quantize, f32, quantized, ftype, "1"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            W, kinds = read_dequantized(gguf, dequantize, quantized, c)
            ref, logits = reference(c, W, kinds, rng_tokens, ftype)
            with open(os.path.join(out, "reference.json"), "w") as f:
                json.dump(ref, f, indent=1)
                f.write("\n")
            logits.numpy().astype("<f4").tofile(os.path.join(out, "logits.f32"))
            mix = {}
            for k in kinds.values():
                mix[k] = mix.get(k, 0) + 1
            print(f"{quantized}: {os.path.getsize(quantized)} bytes, tensors {mix}")


if __name__ == "__main__":
    main(sys.argv[1:])
