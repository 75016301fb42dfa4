#!/usr/bin/python3
"""lzn-convert: a Hugging Face LLaMA-family folder -> one GGUF file for lazyneuron.

    /usr/bin/python3 tools/lzn_convert.py MODEL_DIR OUT.gguf [--type f32|f16|bf16|q8_0|q4_0]
        [--no-transpose-down] [--llama-cpp-layout] [--stock] [--magic GGUF|PWRI]

What it writes (llama.cpp's names and keys, so the file is ordinary GGUF):
  general.architecture "llama" ("bamboo" for BambooForCausalLM), llama.block_count,
  llama.embedding_length, llama.feed_forward_length, llama.attention.head_count(_kv),
  llama.attention.key_length, llama.context_length, llama.attention.layer_norm_rms_epsilon,
  llama.rope.freq_base, llama.rope.scaling.type/factor; tensors token_embd, output_norm,
  output (untied only), blk.N.attn_norm / attn_q / attn_k / attn_v / attn_output (+ .bias),
  ffn_norm / ffn_gate / ffn_up / ffn_down.
And what stock GGUF has no key for, under lazyneuron.*:
  lazyneuron.activation ("relu", "fatrelu", "drelu", "silu") and, for fatrelu,
  lazyneuron.activation_threshold; lazyneuron.rope.rotate_half = true: q and k rows stay
  in Hugging Face's order (llama.cpp's converter interleaves each head's halves for
  ggml's pairwise rope; --llama-cpp-layout writes that order instead, and then the
  loader puts them back); lazyneuron.down_transposed = true with blk.N.ffn_down_t.weight
  [ffn][embd] instead of ffn_down (PowerInfer's name): W_down already as lazyneuron reads
  it, so a load in the file's type maps every matrix in place (several server processes
  then share one copy in the page cache). --no-transpose-down writes ffn_down as
  llama.cpp does (lazyneuron then transposes it at load, and for Q8_0/Q4_0 requantizes).
  --stock writes what llama.cpp's own converter would (its q/k order, ffn_down, no
  lazyneuron.* keys): the loader then reads the activation as relu for PowerInfer's PWRI
  files and dReLU for bamboo, else SiLU.

Matrices take --type (default: as stored, F32/F16/BF16); norms and biases stay F32.
Q8_0/Q4_0 are llama.cpp's reference quantizers (tools/gguf_write.py), which round as
lazyneuron's kernels/ref/ do, so a quantized GGUF and the same folder loaded with
weight_type Q8_0/Q4_0 hold the same bytes. Block types need every row length to be a
multiple of 32 (GGUF's rule). Plain Python + numpy (Debian's python3-numpy).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_write import q4_0, q8_0, raw, typed, write_gguf  # noqa: E402

# ------------------------------------------------------------- safetensors


def _read_safetensors(path):
    """name -> (dtype string, shape, numpy array of the stored values; BF16 as uint16)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    np_types = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = info["dtype"]
        if dtype not in np_types:
            raise SystemExit(f"{path}: tensor {name} has dtype {dtype}; lzn-convert reads F32/F16/BF16")
        b, e = info["data_offsets"]
        arr = np.frombuffer(data, dtype=np_types[dtype], count=(e - b) // np.dtype(np_types[dtype]).itemsize,
                            offset=base + b).reshape(info["shape"])
        out[name] = (dtype, tuple(info["shape"]), arr)
    return out


def read_folder(folder):
    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(single):
        return _read_safetensors(single)
    index = json.load(open(os.path.join(folder, "model.safetensors.index.json")))
    tensors = {}
    for shard in sorted(set(index["weight_map"].values())):
        tensors.update(_read_safetensors(os.path.join(folder, shard)))
    return tensors


def as_f32(entry):
    dtype, _, arr = entry
    if dtype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float32)


def bf16_bytes(x):
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded.tobytes()


# ----------------------------------------------------------------- convert


def llama_cpp_permute(w, n_heads):
    """llama.cpp's convert_hf_to_gguf permute: each head's rows from (half, i) to (i, half)."""
    return w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def activation_of(config):
    act = config.get("hidden_act", "silu")
    archs = config.get("architectures") or []
    if config.get("model_type") == "bamboo" or "BambooForCausalLM" in archs:
        return "drelu" if act in ("relu", "drelu") else act
    return {"swish": "silu"}.get(act, act)


def matrix(x, out_type, stored):
    """A weight matrix in the output type ('as_stored' keeps the file's)."""
    t = out_type if out_type != "as_stored" else stored.lower()
    if t == "f32":
        return np.ascontiguousarray(x, dtype=np.float32)
    if t == "f16":
        return np.ascontiguousarray(x, dtype=np.float16)
    if t == "bf16":
        return raw("BF16", x.shape, bf16_bytes(x))
    if t == "q8_0":
        return q8_0(x)
    if t == "q4_0":
        return q4_0(x)
    raise SystemExit(f"unknown type {t}")


def convert(folder, out, out_type="as_stored", transpose_down=True, llama_cpp_layout=False, magic=b"GGUF",
            stock=False):
    if stock:
        transpose_down, llama_cpp_layout = False, True
    config = json.load(open(os.path.join(folder, "config.json")))
    tensors = read_folder(folder)
    d, f = config["hidden_size"], config["intermediate_size"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or d // heads
    layers = config["num_hidden_layers"]
    act = activation_of(config)
    archs = config.get("architectures") or []
    arch = "bamboo" if (config.get("model_type") == "bamboo" or "BambooForCausalLM" in archs) else "llama"
    if config.get("mlp_bias"):
        raise SystemExit("mlp_bias is not supported")
    meta = {
        "general.architecture": arch,
        "general.name": os.path.basename(os.path.normpath(folder)),
        f"{arch}.block_count": typed("u32", layers),
        f"{arch}.context_length": typed("u32", config["max_position_embeddings"]),
        f"{arch}.embedding_length": typed("u32", d),
        f"{arch}.feed_forward_length": typed("u32", f),
        f"{arch}.attention.head_count": typed("u32", heads),
        f"{arch}.attention.head_count_kv": typed("u32", kv_heads),
        f"{arch}.attention.key_length": typed("u32", head_dim),
        f"{arch}.attention.value_length": typed("u32", head_dim),
        f"{arch}.attention.layer_norm_rms_epsilon": typed("f32", config.get("rms_norm_eps", 1e-6)),
        f"{arch}.rope.freq_base": typed("f32", config.get("rope_theta", 10000.0)),
        "lazyneuron.activation": act,
        "lazyneuron.rope.rotate_half": not llama_cpp_layout,
        "lazyneuron.down_transposed": bool(transpose_down),
    }
    if act == "fatrelu":
        meta["lazyneuron.activation_threshold"] = typed("f32", config["hidden_act_param"])
    if stock:
        meta = {k: v for k, v in meta.items() if not k.startswith("lazyneuron.")}
    scaling = config.get("rope_scaling")
    if scaling:
        kind = scaling.get("rope_type", scaling.get("type"))
        if kind != "linear":
            raise SystemExit(f"rope_scaling {kind} is not supported")
        meta[f"{arch}.rope.scaling.type"] = "linear"
        meta[f"{arch}.rope.scaling.factor"] = typed("f32", scaling["factor"])

    def get(name):
        return tensors[name]

    def mat(name, permute_heads=0):
        x = as_f32(get(name))
        if permute_heads and llama_cpp_layout:
            x = llama_cpp_permute(x, permute_heads)
        return matrix(x, out_type, get(name)[0])

    def vec(name, permute_heads=0):
        x = as_f32(get(name))
        if permute_heads and llama_cpp_layout:
            x = llama_cpp_permute(x, permute_heads)
        return np.ascontiguousarray(x, dtype=np.float32)

    out_tensors = {
        "token_embd.weight": mat("model.embed_tokens.weight"),
        "output_norm.weight": vec("model.norm.weight"),
    }
    if "lm_head.weight" in tensors and not config.get("tie_word_embeddings", False):
        out_tensors["output.weight"] = mat("lm_head.weight")
    for i in range(layers):
        p, q = f"model.layers.{i}.", f"blk.{i}."
        out_tensors[q + "attn_norm.weight"] = vec(p + "input_layernorm.weight")
        out_tensors[q + "attn_q.weight"] = mat(p + "self_attn.q_proj.weight", heads)
        out_tensors[q + "attn_k.weight"] = mat(p + "self_attn.k_proj.weight", kv_heads)
        out_tensors[q + "attn_v.weight"] = mat(p + "self_attn.v_proj.weight")
        out_tensors[q + "attn_output.weight"] = mat(p + "self_attn.o_proj.weight")
        for hf, gg, perm in (("q_proj", "attn_q", heads), ("k_proj", "attn_k", kv_heads),
                             ("v_proj", "attn_v", 0), ("o_proj", "attn_output", 0)):
            if p + f"self_attn.{hf}.bias" in tensors:
                out_tensors[q + f"{gg}.bias"] = vec(p + f"self_attn.{hf}.bias", perm)
        out_tensors[q + "ffn_norm.weight"] = vec(p + "post_attention_layernorm.weight")
        out_tensors[q + "ffn_gate.weight"] = mat(p + "mlp.gate_proj.weight")
        out_tensors[q + "ffn_up.weight"] = mat(p + "mlp.up_proj.weight")
        down = get(p + "mlp.down_proj.weight")
        if transpose_down:
            out_tensors[q + "ffn_down_t.weight"] = matrix(np.ascontiguousarray(as_f32(down).T), out_type, down[0])
        else:
            out_tensors[q + "ffn_down.weight"] = mat(p + "mlp.down_proj.weight")
    write_gguf(out, meta, out_tensors, alignment=64, magic=magic)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--type", default="as_stored", choices=["as_stored", "f32", "f16", "bf16", "q8_0", "q4_0"])
    ap.add_argument("--no-transpose-down", action="store_true")
    ap.add_argument("--llama-cpp-layout", action="store_true")
    ap.add_argument("--stock", action="store_true")
    ap.add_argument("--magic", default="GGUF", choices=["GGUF", "PWRI"])
    a = ap.parse_args(argv)
    convert(a.model_dir, a.out, a.type, not a.no_transpose_down, a.llama_cpp_layout, a.magic.encode(),
            a.stock)


if __name__ == "__main__":
    main(sys.argv[1:])
