#!/usr/bin/python3
"""lzn-convert: a Hugging Face OPT or LLaMA-family folder -> one GGUF file, tokenizer included.

    lzn-convert [options] MODEL_DIR OUT.gguf          (installed by make install)
    /usr/bin/python3 tools/convert/lzn_convert.py [options] MODEL_DIR OUT.gguf

MODEL_DIR holds config.json and model.safetensors (or model.safetensors.index.json and its
shards) in F32, F16 or BF16. OUT.gguf loads with lzn-run, lzn-quantize and lzn_model_load;
its tokenizer is the folder's (tools/convert/hf_tokenizer.py: lazyneuron_tokenizer.json,
tokenizer.model, tokenizer.json, or vocab.json + merges.txt -> tokenizer.ggml.* as
llama.cpp writes them) and tokenizer.chat_template the folder's chat template, if any.

LLaMA family (LlamaForCausalLM, MistralForCausalLM, BambooForCausalLM): llama.cpp's names
and keys (general.architecture "llama" or "bamboo", {arch}.block_count,
{arch}.embedding_length, {arch}.feed_forward_length, {arch}.attention.head_count(_kv),
{arch}.attention.key_length, {arch}.context_length, {arch}.attention.layer_norm_rms_epsilon,
{arch}.rope.freq_base, {arch}.rope.scaling.type/factor; tensors token_embd, output_norm,
output (untied only), blk.N.attn_norm / attn_q / attn_k / attn_v / attn_output (+ .bias),
ffn_norm / ffn_gate / ffn_up / ffn_down), and under lazyneuron.* what stock GGUF has no
key for: lazyneuron.activation ("relu", "fatrelu", "drelu", "silu"; fatrelu's
lazyneuron.activation_threshold); lazyneuron.rope.rotate_half = true (q and k rows in
Hugging Face's order; --llama-cpp-layout writes llama.cpp's interleaved order instead).

OPT (OPTForCausalLM; llama.cpp has no OPT): general.architecture "opt", opt.block_count,
opt.embedding_length, opt.feed_forward_length, opt.attention.head_count, opt.context_length,
opt.word_embed_proj_dim, opt.do_layer_norm_before, opt.enable_bias,
opt.layer_norm_elementwise_affine, opt.remove_final_layer_norm; tensors token_embd,
position_embd (max positions + 2 rows, OPT's offset), proj_in / proj_out, output_norm
(.weight, .bias), output (untied only), blk.N.attn_norm, attn_q/k/v/output, ffn_norm,
ffn_up, ffn_down, each with .bias where the model has them.

Both: lazyneuron.down_transposed = true with blk.N.ffn_down_t.weight [ffn][embd] instead of
ffn_down (PowerInfer's name): W_down already as lazyneuron reads it, so a load in the file's
type maps every matrix in place. Matrices take --type; norms, biases and positions stay F32.
Q8_0/Q4_0 are llama.cpp's reference quantizers (tools/convert/gguf_write.py), which round as the
library's kernels/ref/ do: a quantized GGUF holds the bytes the folder loaded with that
weight_type holds, so both generate the same text. A predictor.safetensors is not carried
(pass it with lzn_model_params.predictor_path).

Standard output gets one line per step; a failure is one line "lzn-convert: FILE: rule" on
standard error and exit status 1 (2 for a usage error). OUT.gguf is written under a
temporary name and renamed: it appears complete or not at all.
"""
import argparse
import json
import mmap
import os
import struct
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_tokenizer  # noqa: E402
from gguf_write import lazy, q4_0, q8_0, raw, typed, write_gguf  # noqa: E402

PROG = "lzn-convert"
TYPES = ["as_stored", "f32", "f16", "bf16", "q8_0", "q4_0"]
GGUF_TYPE = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "q4_0": "Q4_0"}
MAX_HEADER = 100_000_000  # safetensors' rule, as the library reads it
MAX_SIZE = 1 << 24        # largest size a config may give (the library's LZN_CONFIG_MAX_SIZE)


class ConvertError(Exception):
    """One line: "FILE: the rule it breaks"."""

    def __init__(self, path, rule):
        super().__init__(f"{path}: {rule}")


# ------------------------------------------------------------- safetensors

NP_TYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


class SafetensorsFile:
    """A mapped safetensors file, validated as the library validates it (header at most
    100 MB, a JSON object, known dtypes, offsets contiguous, in bounds and exactly tiling
    the data); tensor(name) is a read-only numpy view (BF16 as uint16)."""

    def __init__(self, path):
        self.path = path
        size = os.path.getsize(path)
        if size < 8:
            raise ConvertError(path, f"truncated: {size} bytes, not even the 8-byte header length")
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > MAX_HEADER or 8 + n > size:
                raise ConvertError(path, f"truncated or not safetensors: the header length is {n}, "
                                   f"the file {size} bytes")
            try:
                header = json.loads(f.read(n).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ConvertError(path, f"the header is not JSON: {e}") from None
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if not isinstance(header, dict):
            raise ConvertError(path, "the header is not a JSON object")
        self.base, self.entries = 8 + n, {}
        spans = []
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if not isinstance(info, dict):
                raise ConvertError(path, f"tensor {name!r}: its entry is not an object")
            dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
            if dtype not in NP_TYPES:
                raise ConvertError(path, f"tensor {name!r} has dtype {dtype!r}; lzn-convert reads "
                                   "F32, F16 and BF16")
            if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape) or
                    not isinstance(offsets, list) or len(offsets) != 2 or
                    not all(isinstance(o, int) and o >= 0 for o in offsets)):
                raise ConvertError(path, f"tensor {name!r}: shape and data_offsets must be lists of "
                                   "non-negative integers")
            begin, end = offsets
            nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(NP_TYPES[dtype]).itemsize
            if end - begin != nbytes:
                raise ConvertError(path, f"tensor {name!r}: data_offsets {offsets} hold {end - begin} "
                                   f"bytes, its shape and dtype {nbytes}")
            self.entries[name] = (dtype, tuple(shape), begin)
            spans.append((begin, end, name))
        pos = 0
        for begin, end, name in sorted(spans):
            if begin != pos:
                raise ConvertError(path, f"tensor {name!r} starts at {begin}, not {pos}: offsets "
                                   "must be contiguous")
            pos = end
        if self.base + pos != size:
            raise ConvertError(path, f"truncated or padded: the header describes {self.base + pos} "
                               f"bytes, the file has {size}")

    def tensor(self, name):
        dtype, shape, begin = self.entries[name]
        count = int(np.prod(shape, dtype=np.int64))
        return np.frombuffer(self._map, dtype=np.dtype(NP_TYPES[dtype]).newbyteorder("<"),
                             count=count, offset=self.base + begin).reshape(shape)


class Weights:
    """The folder's tensors, from model.safetensors or an index and its shards."""

    def __init__(self, folder):
        single = os.path.join(folder, "model.safetensors")
        index_path = os.path.join(folder, "model.safetensors.index.json")
        self.files, self.where = [], {}
        if os.path.isfile(single):
            self._add(SafetensorsFile(single))
        elif os.path.isfile(index_path):
            index = read_json(index_path)
            weight_map = index.get("weight_map")
            if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
                raise ConvertError(index_path, "\"weight_map\" must map tensor names to shard files")
            for shard in sorted(set(weight_map.values())):
                if os.path.basename(shard) != shard:
                    raise ConvertError(index_path, f"shard {shard!r} is not a file in the folder")
                shard_path = os.path.join(folder, shard)
                if not os.path.isfile(shard_path):
                    raise ConvertError(shard_path, "missing (named by model.safetensors.index.json)")
                self._add(SafetensorsFile(shard_path))
            for name, shard in weight_map.items():
                if self.where.get(name, (None, None))[1] != os.path.join(folder, shard):
                    raise ConvertError(os.path.join(folder, shard), f"tensor {name!r}, which the "
                                       "index places there, is not in it")
        else:
            if os.path.isfile(os.path.join(folder, "pytorch_model.bin")):
                raise ConvertError(folder, "has pytorch_model.bin but no model.safetensors: "
                                   "lzn-convert reads safetensors only")
            raise ConvertError(folder, "no model.safetensors or model.safetensors.index.json")

    def _add(self, f):
        self.files.append(f)
        for name in f.entries:
            if name in self.where:
                raise ConvertError(f.path, f"tensor {name!r} is also in {self.where[name][1]}")
            self.where[name] = (f, f.path)

    def has(self, name):
        return name in self.where

    def get(self, name, shape):
        """(dtype, numpy view) of a tensor of this shape (a tuple; None: any)."""
        if name not in self.where:
            raise ConvertError(self.files[0].path if len(self.files) == 1 else "the safetensors",
                               f"tensor {name!r} is missing")
        f, path = self.where[name]
        dtype, have, _ = f.entries[name]
        if shape is not None and have != tuple(shape):
            raise ConvertError(path, f"tensor {name!r} has shape {list(have)}, config.json implies "
                               f"{list(shape)}")
        return dtype, f.tensor(name)

    def total_bytes(self):
        return sum(os.path.getsize(f.path) for f in self.files)

    def dtypes(self):
        return sorted({e[0] for f in self.files for e in f.entries.values()})


def as_f32(dtype, arr):
    if dtype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float32)


def bf16_bytes(x):
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded.tobytes()


# ------------------------------------------------------------------ config


def read_json(path):
    try:
        with open(path, "rb") as f:
            value = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise ConvertError(path, "missing") from None
    except UnicodeDecodeError as e:
        raise ConvertError(path, f"not UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ConvertError(path, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(value, dict):
        raise ConvertError(path, "must be a JSON object")
    return value


class Config:
    """config.json with typed getters whose errors name the file and the key."""

    def __init__(self, path):
        self.path, self.data = path, read_json(path)

    def get(self, key, default=None):
        value = self.data.get(key)
        return default if value is None else value

    def size(self, key, default=None):
        value = self.data.get(key)
        if value is None:
            if default is None:
                raise ConvertError(self.path, f"\"{key}\" is missing")
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
            raise ConvertError(self.path, f"\"{key}\" is {value!r}, must be an integer in [1, {MAX_SIZE}]")
        return value

    def flag(self, key, default):
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConvertError(self.path, f"\"{key}\" is {value!r}, must be true or false")
        return value

    def real(self, key, default):
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConvertError(self.path, f"\"{key}\" is {value!r}, must be a number")
        return float(value)


LLAMA_ARCHS = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama", "BambooForCausalLM": "bamboo"}
LLAMA_TYPES = {"llama": "llama", "mistral": "llama", "bamboo": "bamboo"}


def family_of(config):
    """"opt", "llama" or "bamboo", from model_type / architectures, as the library decides."""
    model_type = config.get("model_type")
    archs = config.get("architectures", [])
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise ConvertError(config.path, "\"architectures\" must be a list of strings")
    if model_type == "opt" or "OPTForCausalLM" in archs or "OPTModel" in archs:
        return "opt"
    if model_type in LLAMA_TYPES:
        return LLAMA_TYPES[model_type]
    for a in archs:
        if a in LLAMA_ARCHS:
            return LLAMA_ARCHS[a]
    named = f"architectures {archs}" if archs else f"model_type {model_type!r}"
    raise ConvertError(config.path, f"{named} is not supported: lzn-convert converts OPT "
                       "(OPTForCausalLM) and the LLaMA family (LlamaForCausalLM, MistralForCausalLM, "
                       "BambooForCausalLM)")


# ----------------------------------------------------------------- tensors


class Writer:
    """Collects the output tensors (lazy: made when written) and what they hold."""

    def __init__(self, weights, out_type):
        self.weights, self.out_type = weights, out_type
        self.tensors, self.kinds = {}, {}

    def _put(self, name, ggml_type, shape, make):
        self.tensors[name] = lazy(ggml_type, shape, make)
        self.kinds[ggml_type] = self.kinds.get(ggml_type, 0) + 1

    def vector(self, out_name, name, shape):
        """A norm, bias or table: always F32."""
        dtype, arr = self.weights.get(name, shape)
        self._put(out_name, "F32", arr.shape, lambda: np.ascontiguousarray(as_f32(dtype, arr), np.float32))

    def matrix(self, out_name, name, shape, transform=None, transposed=False):
        """A weight matrix in --type (as_stored: the file's); transform(x) reorders rows."""
        dtype, arr = self.weights.get(name, shape)
        t = self.out_type if self.out_type != "as_stored" else dtype.lower()
        out_shape = arr.shape[::-1] if transposed else arr.shape
        ggml_type = GGUF_TYPE[t]
        if t in ("q8_0", "q4_0") and out_shape[-1] % 32:
            raise ConvertError(self.weights.where[name][1], f"tensor {name!r} has rows of "
                               f"{out_shape[-1]} weights{' (transposed)' if transposed else ''}; "
                               f"{t} needs a multiple of 32 (GGUF cannot pad a row)")
        path = self.weights.where[name][1]

        def make():
            if t == dtype.lower() and transform is None and not transposed:
                return raw(ggml_type, arr.shape, np.ascontiguousarray(arr).tobytes())
            x = as_f32(dtype, arr)
            if transform is not None:
                x = transform(x)
            if transposed:
                x = x.T
            x = np.ascontiguousarray(x, dtype=np.float32)
            bad = ~np.isfinite(x) | ((np.abs(x) >= 65520) if t == "f16" else False)
            if t != "f32" and bad.any():
                row, col = (int(i) for i in np.argwhere(bad)[0])
                raise ConvertError(path, f"tensor {name!r}{' (transposed)' if transposed else ''} row "
                                   f"{row} holds {x[row, col]} at column {col}, which {t} cannot hold")
            if t == "f32":
                return x
            if t == "f16":
                return x.astype(np.float16)
            if t == "bf16":
                return raw("BF16", x.shape, bf16_bytes(x))
            return q8_0(x) if t == "q8_0" else q4_0(x)

        self._put(out_name, ggml_type, out_shape, make)


def llama_cpp_permute(w, n_heads):
    """llama.cpp's convert_hf_to_gguf permute: each head's rows from (half, i) to (i, half)."""
    return w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def activation_of(config, arch):
    act = config.get("hidden_act", "silu")
    if arch == "bamboo":
        act = "drelu" if act in ("relu", "drelu") else act
    act = {"swish": "silu"}.get(act, act)
    if act not in ("relu", "fatrelu", "drelu", "silu"):
        raise ConvertError(config.path, f"hidden_act {act!r} is not supported (relu, fatrelu, drelu, silu)")
    return act


def llama_model(config, w, arch, transpose_down, llama_cpp_layout):
    d, f = config.size("hidden_size"), config.size("intermediate_size")
    heads = config.size("num_attention_heads")
    kv_heads = config.size("num_key_value_heads", heads)
    if d % heads or heads % kv_heads:
        raise ConvertError(config.path, f"hidden_size {d}, num_attention_heads {heads} and "
                           f"num_key_value_heads {kv_heads} do not divide")
    head_dim = config.size("head_dim", d // heads)
    layers, vocab = config.size("num_hidden_layers"), config.size("vocab_size")
    act = activation_of(config, arch)
    if config.flag("mlp_bias", False):
        raise ConvertError(config.path, "\"mlp_bias\": true is not supported")
    meta = {
        f"{arch}.block_count": typed("u32", layers),
        f"{arch}.context_length": typed("u32", config.size("max_position_embeddings")),
        f"{arch}.embedding_length": typed("u32", d),
        f"{arch}.feed_forward_length": typed("u32", f),
        f"{arch}.attention.head_count": typed("u32", heads),
        f"{arch}.attention.head_count_kv": typed("u32", kv_heads),
        f"{arch}.attention.key_length": typed("u32", head_dim),
        f"{arch}.attention.value_length": typed("u32", head_dim),
        f"{arch}.attention.layer_norm_rms_epsilon": typed("f32", config.real("rms_norm_eps", 1e-6)),
        f"{arch}.rope.freq_base": typed("f32", config.real("rope_theta", 10000.0)),
        "lazyneuron.activation": act,
        "lazyneuron.rope.rotate_half": not llama_cpp_layout,
    }
    if act == "fatrelu":
        meta["lazyneuron.activation_threshold"] = typed("f32", config.real("hidden_act_param", 0.0))
    scaling = config.get("rope_scaling")
    if scaling:
        kind = scaling.get("rope_type", scaling.get("type")) if isinstance(scaling, dict) else scaling
        if kind != "linear" or not isinstance(scaling.get("factor"), (int, float)):
            raise ConvertError(config.path, f"rope_scaling {kind!r} is not supported (linear with a factor)")
        meta[f"{arch}.rope.scaling.type"] = "linear"
        meta[f"{arch}.rope.scaling.factor"] = typed("f32", scaling["factor"])

    def permuted(n):
        return (lambda x: llama_cpp_permute(x, n)) if llama_cpp_layout else None

    q_dim, kv_dim = heads * head_dim, kv_heads * head_dim
    w.matrix("token_embd.weight", "model.embed_tokens.weight", (vocab, d))
    w.vector("output_norm.weight", "model.norm.weight", (d,))
    if w.weights.has("lm_head.weight") and not config.flag("tie_word_embeddings", False):
        w.matrix("output.weight", "lm_head.weight", (vocab, d))
    bias = config.flag("attention_bias", False) or w.weights.has("model.layers.0.self_attn.q_proj.bias")
    for i in range(layers):
        p, q = f"model.layers.{i}.", f"blk.{i}."
        w.vector(q + "attn_norm.weight", p + "input_layernorm.weight", (d,))
        for hf, gg, rows, cols, perm in (("q_proj", "attn_q", q_dim, d, heads), ("k_proj", "attn_k", kv_dim, d, kv_heads),
                                         ("v_proj", "attn_v", kv_dim, d, 0), ("o_proj", "attn_output", d, q_dim, 0)):
            w.matrix(q + f"{gg}.weight", p + f"self_attn.{hf}.weight", (rows, cols), permuted(perm) if perm else None)
            if bias:
                name = p + f"self_attn.{hf}.bias"
                if perm and llama_cpp_layout:
                    raise ConvertError(config.path, "q/k biases cannot be written in llama.cpp's rotary "
                                       "layout (lazyneuron does not read them): drop --llama-cpp-layout")
                if w.weights.has(name) or hf != "o_proj":
                    w.vector(q + f"{gg}.bias", name, (rows,))
        w.vector(q + "ffn_norm.weight", p + "post_attention_layernorm.weight", (d,))
        w.matrix(q + "ffn_gate.weight", p + "mlp.gate_proj.weight", (f, d))
        w.matrix(q + "ffn_up.weight", p + "mlp.up_proj.weight", (f, d))
        if transpose_down:
            w.matrix(q + "ffn_down_t.weight", p + "mlp.down_proj.weight", (d, f), transposed=True)
        else:
            w.matrix(q + "ffn_down.weight", p + "mlp.down_proj.weight", (d, f))
    return meta, f"{arch}, {act}, {layers} layers, d_model {d}, d_ff {f}, vocab {vocab}", vocab


def opt_model(config, w, transpose_down):
    d, f = config.size("hidden_size"), config.size("ffn_dim")
    heads, layers = config.size("num_attention_heads"), config.size("num_hidden_layers")
    vocab, max_pos = config.size("vocab_size"), config.size("max_position_embeddings")
    e = config.size("word_embed_proj_dim", d)
    if d % heads:
        raise ConvertError(config.path, f"hidden_size {d} is not divisible by num_attention_heads {heads}")
    act = config.get("activation_function", "relu")
    if act != "relu":
        raise ConvertError(config.path, f"activation_function {act!r} is not supported: lazyneuron "
                           "needs relu (its sparsity is ReLU's zeros)")
    pre_ln = config.flag("do_layer_norm_before", True)
    bias = config.flag("enable_bias", True)
    affine = config.flag("layer_norm_elementwise_affine", True)
    remove_final = config.flag("_remove_final_layer_norm", False)
    meta = {
        "opt.block_count": typed("u32", layers),
        "opt.context_length": typed("u32", max_pos),
        "opt.embedding_length": typed("u32", d),
        "opt.feed_forward_length": typed("u32", f),
        "opt.attention.head_count": typed("u32", heads),
        "opt.word_embed_proj_dim": typed("u32", e),
        "opt.do_layer_norm_before": pre_ln,
        "opt.enable_bias": bias,
        "opt.layer_norm_elementwise_affine": affine,
        "opt.remove_final_layer_norm": remove_final,
    }
    weights = w.weights
    prefix = next((p for p in ("model.decoder.", "decoder.") if weights.has(p + "embed_tokens.weight")), None)
    if prefix is None:
        raise ConvertError(weights.files[0].path, "tensor 'model.decoder.embed_tokens.weight' (or "
                           "'decoder.embed_tokens.weight') is missing: not an OPT checkpoint?")
    w.matrix("token_embd.weight", prefix + "embed_tokens.weight", (vocab, e))
    w.vector("position_embd.weight", prefix + "embed_positions.weight", (max_pos + 2, d))
    if e != d:
        w.matrix("proj_in.weight", prefix + "project_in.weight", (d, e))
        w.matrix("proj_out.weight", prefix + "project_out.weight", (e, d))
    if pre_ln and not remove_final and affine:
        w.vector("output_norm.weight", prefix + "final_layer_norm.weight", (d,))
        w.vector("output_norm.bias", prefix + "final_layer_norm.bias", (d,))
    if not config.flag("tie_word_embeddings", True):
        w.matrix("output.weight", "lm_head.weight", (vocab, e))
    for i in range(layers):
        p, q = f"{prefix}layers.{i}.", f"blk.{i}."
        if affine:
            for hf, gg in (("self_attn_layer_norm", "attn_norm"), ("final_layer_norm", "ffn_norm")):
                w.vector(q + f"{gg}.weight", p + f"{hf}.weight", (d,))
                w.vector(q + f"{gg}.bias", p + f"{hf}.bias", (d,))
        for hf, gg in (("q_proj", "attn_q"), ("k_proj", "attn_k"), ("v_proj", "attn_v"), ("out_proj", "attn_output")):
            w.matrix(q + f"{gg}.weight", p + f"self_attn.{hf}.weight", (d, d))
            if bias:
                w.vector(q + f"{gg}.bias", p + f"self_attn.{hf}.bias", (d,))
        w.matrix(q + "ffn_up.weight", p + "fc1.weight", (f, d))
        if transpose_down:
            w.matrix(q + "ffn_down_t.weight", p + "fc2.weight", (d, f), transposed=True)
        else:
            w.matrix(q + "ffn_down.weight", p + "fc2.weight", (d, f))
        if bias:
            w.vector(q + "ffn_up.bias", p + "fc1.bias", (f,))
            w.vector(q + "ffn_down.bias", p + "fc2.bias", (d,))
    shape = f"{'pre' if pre_ln else 'post'}-LN, {layers} layers, d_model {d}, d_ff {f}, vocab {vocab}"
    return meta, "opt, relu, " + shape, vocab


# ----------------------------------------------------------------- convert


def build(folder, out_type="as_stored", transpose_down=True, llama_cpp_layout=False, stock=False,
          tokenizer=True, log=None):
    """(metadata, {name: tensor or lazy}) of the GGUF for a folder; log(line) reports each step."""
    log = log or (lambda line: None)
    if not os.path.exists(folder):
        raise ConvertError(folder, "no such folder")
    if not os.path.isdir(folder):
        raise ConvertError(folder, "not a folder: lzn-convert reads a Hugging Face model folder "
                           "(config.json + model.safetensors)")
    if out_type not in TYPES:
        raise ConvertError(folder, f"--type {out_type!r} is not one of {', '.join(TYPES)}")
    if stock:
        transpose_down, llama_cpp_layout = False, True
    config = Config(os.path.join(folder, "config.json"))
    arch = family_of(config)
    if arch == "opt" and llama_cpp_layout:
        raise ConvertError(config.path, "--stock and --llama-cpp-layout apply to the LLaMA family "
                           "(llama.cpp has no OPT)")
    weights = Weights(folder)
    w = Writer(weights, out_type)
    if arch == "opt":
        arch_meta, what, vocab = opt_model(config, w, transpose_down)
    else:
        arch_meta, what, vocab = llama_model(config, w, arch, transpose_down, llama_cpp_layout)
    log(f"read {folder}: {what}; {len(weights.where)} tensors "
        f"({'/'.join(weights.dtypes())}, {weights.total_bytes() / 1e6:.1f} MB)")
    meta = {"general.architecture": arch, "general.name": os.path.basename(os.path.normpath(folder))}
    meta.update(arch_meta)
    meta["lazyneuron.down_transposed"] = bool(transpose_down)
    if stock:
        meta = {k: v for k, v in meta.items() if not k.startswith("lazyneuron.")}
    if tokenizer:
        try:
            tok_meta, summary, templates = hf_tokenizer.tokenizer_metadata(folder, config.data, arch, vocab)
        except hf_tokenizer.TokenizerError as e:
            raise ConvertError(e.path, e.rule) from None
        meta.update(tok_meta)
        log(f"tokenizer: {summary}")
        log("chat template: " + (", ".join(f"{k} ({len(v)} characters)" for k, v in templates.items())
                                 if templates else "none in the folder"))
    else:
        log("tokenizer: not written (--no-tokenizer)")
    if os.path.isfile(os.path.join(folder, "predictor.safetensors")):
        log("predictor.safetensors: not carried (GGUF holds PowerInfer's predictor only); pass it "
            "with lzn_model_params.predictor_path")
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(w.kinds.items()))
    log(f"tensors: {len(w.tensors)} ({kinds}){'; W_down transposed (ffn_down_t)' if transpose_down else ''}")
    return meta, w.tensors


def convert(folder, out, out_type="as_stored", transpose_down=True, llama_cpp_layout=False, magic=b"GGUF",
            stock=False, tokenizer=True, log=None):
    """Writes the GGUF of a folder to out, through a temporary file renamed at the end."""
    log = log or (lambda line: None)
    t0 = time.monotonic()
    if os.path.isdir(out):
        raise ConvertError(out, "is a folder; give the output file's name")
    meta, tensors = build(folder, out_type, transpose_down, llama_cpp_layout, stock, tokenizer, log)
    directory = os.path.dirname(os.path.abspath(out))
    tmp = os.path.join(directory, f".{os.path.basename(out)}.tmp.{os.getpid()}")
    try:
        write_gguf(tmp, meta, tensors, alignment=64, magic=magic)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    log(f"wrote {out}: {os.path.getsize(out) / 1e6:.1f} MB in {time.monotonic() - t0:.2f} s")


def parser():
    ap = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Converts a Hugging Face OPT or LLaMA-family folder (config.json + "
                    "model.safetensors or an index and shards; F32, F16 or BF16) into one GGUF "
                    "file that lzn-run, lzn-quantize and the library load, with the folder's "
                    "tokenizer and chat template.",
        epilog="Exit status: 0 written; 1 a file breaks a rule (one line naming it); 2 a usage error.\n"
               "OUT.gguf is written under a temporary name and renamed: complete or absent.")
    ap.add_argument("model_dir", metavar="MODEL_DIR", help="the Hugging Face model folder")
    ap.add_argument("out", metavar="OUT.gguf", help="the GGUF file to write (replaced if it exists)")
    ap.add_argument("--type", default="as_stored", type=lambda v: v.replace("-", "_").lower(),
                    choices=TYPES, metavar="TYPE",
                    help="the weight matrices' type: as_stored (default: F32, F16 or BF16 as in the "
                         "folder), f32, f16, bf16, q8_0 or q4_0 (llama.cpp's blocks of 32: every "
                         "row length a multiple of 32). Norms, biases and positions stay F32.")
    ap.add_argument("--no-transpose-down", action="store_true",
                    help="write W_down as ffn_down, as llama.cpp does (lazyneuron then transposes it "
                         "at load, requantizing Q8_0/Q4_0); default: ffn_down_t, mapped in place")
    ap.add_argument("--llama-cpp-layout", action="store_true",
                    help="LLaMA family: q and k rows in llama.cpp's interleaved rotary order (the "
                         "loader reorders them); default: Hugging Face's order, used in place")
    ap.add_argument("--stock", action="store_true",
                    help="LLaMA family: what llama.cpp's own converter writes (its q/k order, "
                         "ffn_down, no lazyneuron.* keys: the activation is then read as SiLU, "
                         "relu for PWRI files, dReLU for bamboo)")
    ap.add_argument("--magic", default="GGUF", choices=["GGUF", "PWRI"],
                    help="the file's magic: GGUF (default) or PowerInfer's PWRI")
    ap.add_argument("--no-tokenizer", action="store_true",
                    help="write no tokenizer (the model then runs on token ids only)")
    return ap


def main(argv):
    args = parser().parse_args(argv)

    def log(line):
        print(f"{PROG}: {line}", flush=True)

    try:
        convert(args.model_dir, args.out, args.type, not args.no_transpose_down, args.llama_cpp_layout,
                args.magic.encode(), args.stock, not args.no_tokenizer, log)
    except ConvertError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        where = e.filename or args.out
        print(f"{PROG}: {where}: {e.strerror or e}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{PROG}: out of memory", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 (a bug: still one line, no traceback)
        print(f"{PROG}: unexpected {type(e).__name__} (a bug in lzn-convert): {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
