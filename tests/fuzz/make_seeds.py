#!/usr/bin/python3
"""Writes the seed corpora of tests/fuzz/corpus/<harness>/.

    /usr/bin/python3 tests/fuzz/make_seeds.py    # from the repo root

Needs numpy only (and tools/convert/lzn_convert.py for the fuzz_gguf seeds of its output). Deterministic: rerunning rewrites the same bytes. Seeds are
tiny on purpose (a few KB): libFuzzer mutates small inputs fastest, and the
whole corpus stays well under 200 KB. The fuzz_model seeds are whole tiny OPT
models (hidden 4, one or two layers) in the layout fuzz_model.c reads:
control byte, u16 config length, config.json, model.safetensors.
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype name, numpy array of raw values)."""
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, array in tensors:
        if dtype == "F32":
            raw = np.asarray(array, dtype="<f4").tobytes()
        elif dtype == "F16":
            raw = np.asarray(array, dtype="<f2").tobytes()
        elif dtype == "BF16":  # the top half of the F32 bits (truncation is fine for seeds)
            raw = (np.asarray(array, dtype="<f4").view("<u4") >> 16).astype("<u2").tobytes()
        else:
            raw = np.asarray(array).tobytes()
        header[name] = {"dtype": dtype, "shape": list(np.shape(array)),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the reference pads the header to 8 bytes
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def tiny_opt(hidden=4, heads=2, ffn=8, layers=1, vocab=8, max_pos=4, proj=None, pre_ln=True,
             bias=True, affine=True, tied=True, prefix="model.", dtype="F32",
             remove_final_ln=False, full_config=False, seed=0):
    """(config.json bytes, model.safetensors bytes) of a random tiny OPT."""
    rng = np.random.default_rng(seed)
    e = proj or hidden

    def w(*shape):
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    d = prefix + "decoder."
    t = [(d + "embed_tokens.weight", w(vocab, e)),
         (d + "embed_positions.weight", w(max_pos + 2, hidden))]
    if proj:
        t += [(d + "project_in.weight", w(hidden, e)), (d + "project_out.weight", w(e, hidden))]
    if pre_ln and not remove_final_ln and affine:
        t += [(d + "final_layer_norm.weight", 1 + w(hidden)), (d + "final_layer_norm.bias", w(hidden))]
    for i in range(layers):
        p = f"{d}layers.{i}."
        for ln in ("self_attn_layer_norm", "final_layer_norm"):
            if affine:
                t += [(p + ln + ".weight", 1 + w(hidden)), (p + ln + ".bias", w(hidden))]
        for m in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t.append((f"{p}self_attn.{m}.weight", w(hidden, hidden)))
            if bias:
                t.append((f"{p}self_attn.{m}.bias", w(hidden)))
        t.append((p + "fc1.weight", w(ffn, hidden)))
        if bias:
            t.append((p + "fc1.bias", w(ffn)))
        t.append((p + "fc2.weight", w(hidden, ffn)))
        if bias:
            t.append((p + "fc2.bias", w(hidden)))
    if not tied:
        t.append(("lm_head.weight", w(vocab, e)))
    config = {"hidden_size": hidden, "ffn_dim": ffn, "num_attention_heads": heads,
              "num_hidden_layers": layers, "vocab_size": vocab, "max_position_embeddings": max_pos}
    if proj:
        config["word_embed_proj_dim"] = proj
    if not pre_ln:
        config["do_layer_norm_before"] = False
    if not bias:
        config["enable_bias"] = False
    if not affine:
        config["layer_norm_elementwise_affine"] = False
    if not tied:
        config["tie_word_embeddings"] = False
    if remove_final_ln:
        config["_remove_final_layer_norm"] = True
    if full_config:
        config.update({"model_type": "opt", "architectures": ["OPTForCausalLM"],
                       "activation_function": "relu", "torch_dtype": "float32",
                       "word_embed_proj_dim": e})
    return (json.dumps(config, separators=(",", ":")).encode(),
            safetensors([(name, dtype, a) for name, a in t]))


MODELS = {
    "preln": dict(full_config=True),
    "postln-2layers": dict(pre_ln=False, layers=2, seed=1),
    "noprefix": dict(prefix="", seed=2),
    "proj-postln": dict(proj=3, pre_ln=False, seed=3),
    "proj-preln": dict(proj=6, heads=1, seed=4),
    "nobias-noaffine": dict(bias=False, affine=False, seed=5),
    "untied": dict(tied=False, vocab=5, seed=6),
    "f16": dict(dtype="F16", seed=7),
    "bf16": dict(dtype="BF16", seed=8),
    "no-final-ln": dict(remove_final_ln=True, ffn=1, max_pos=1, seed=9),
}


def tiny_llama_gguf(hidden=8, heads=2, kv_heads=1, ffn=12, layers=2, vocab=16, ranks=(1, 3),
                    magic=b"PWRI", arch="llama", pred_type=np.float32, seed=0):
    """A random tiny LLaMA-family GGUF (F32 matrices) with PowerInfer's predictor tensors
    blk.N.fc1 [r][hidden] and fc2 [ffn][r] of rank ranks[N] (None: that layer has none)."""
    sys.path.insert(0, os.path.join(ROOT, "tools", "convert"))
    import gguf_write  # noqa: E402  (tools/convert: the GGUF writer of the test fixtures)
    rng = np.random.default_rng(seed)

    def w(*shape):
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    u32 = lambda v: gguf_write.typed("u32", v)  # noqa: E731
    meta = {"general.architecture": arch, f"{arch}.block_count": u32(layers),
            f"{arch}.context_length": u32(4), f"{arch}.embedding_length": u32(hidden),
            f"{arch}.feed_forward_length": u32(ffn), f"{arch}.attention.head_count": u32(heads),
            f"{arch}.attention.head_count_kv": u32(kv_heads),
            f"{arch}.attention.layer_norm_rms_epsilon": gguf_write.typed("f32", 1e-5),
            "powerinfer.sparse_threshold": gguf_write.typed("f32", 0.0)}
    hd = hidden // heads
    t = {"token_embd.weight": w(vocab, hidden), "output_norm.weight": 1 + w(hidden)}
    for i in range(layers):
        q = f"blk.{i}."
        t.update({q + "attn_norm.weight": 1 + w(hidden), q + "attn_q.weight": w(heads * hd, hidden),
                  q + "attn_k.weight": w(kv_heads * hd, hidden), q + "attn_v.weight": w(kv_heads * hd, hidden),
                  q + "attn_output.weight": w(hidden, heads * hd), q + "ffn_norm.weight": 1 + w(hidden),
                  q + "ffn_gate.weight": w(ffn, hidden), q + "ffn_up.weight": w(ffn, hidden),
                  q + "ffn_down.weight": w(hidden, ffn)})
        if ranks[i] is not None:
            t[q + "fc1.weight"] = w(ranks[i], hidden).astype(pred_type)
            t[q + "fc2.weight"] = w(ffn, ranks[i]).astype(pred_type)
    path = os.path.join(CORPUS, ".tmp.gguf")
    gguf_write.write_gguf(path, meta, t, alignment=32, magic=magic)
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    return data


GGUF_MODELS = {  # fuzz_gguf_model: name -> (control byte, tiny_llama_gguf arguments)
    "pwri-r1-r3": (1, dict()),
    "pwri-r7-r16-f16": (3, dict(ranks=(7, 16), pred_type=np.float16, seed=1)),
    "pwri-bamboo-r33-r5": (0x45, dict(arch="bamboo", ranks=(33, 5), seed=2)),
    "gguf-no-predictor": (2, dict(magic=b"GGUF", ranks=(None, None), seed=3)),
}

def gguf_seeds():
    """fuzz_gguf seeds of what lzn-convert writes (this script writes only these names in
    fuzz_gguf/; the others come from tests/test_gguf.c): an OPT model (opt.* keys, OPT's
    GGUF tensor names) and tokenizer arrays of each kind the library reads."""
    import tempfile
    sys.path.insert(0, os.path.join(ROOT, "tools", "convert"))
    import hf_tokenizer
    import lzn_convert
    from gguf_write import gguf_bytes, typed

    with tempfile.TemporaryDirectory() as folder:
        config, weights = tiny_opt(full_config=True, seed=11)
        with open(os.path.join(folder, "config.json"), "wb") as f:
            f.write(config)
        with open(os.path.join(folder, "model.safetensors"), "wb") as f:
            f.write(weights)
        meta, tensors = lzn_convert.build(folder)
        meta["general.name"] = "opt-tiny"
        write("fuzz_gguf", "opt-tiny.gguf", gguf_bytes(meta, tensors))
        with open(os.path.join(folder, "lazyneuron_tokenizer.json"), "w") as f:
            json.dump({"type": "byte-level", "bos_token_id": None, "eos_token_id": 2, "add_bos": False}, f)
        tok_meta, _, _ = hf_tokenizer.tokenizer_metadata(folder, {}, "opt", 256)
    write("fuzz_gguf", "tokenizer-byte-level.gguf", gguf_bytes({"general.architecture": "opt", **tok_meta}, {}))
    space = "\u2581"
    tokens = ["<unk>", "<s>", "</s>", "<0x41>", "<0x0A>", space, "a", "b", space + "a", "ab", space + "ab"]
    write("fuzz_gguf", "tokenizer-spm.gguf", gguf_bytes({
        "general.architecture": "llama", "tokenizer.ggml.model": "llama", "tokenizer.ggml.pre": "default",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.scores": np.array([0, 0, 0, 0, 0, -1, -2, -3, -4, -5, -6], dtype=np.float32),
        "tokenizer.ggml.token_type": np.array([2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1], dtype=np.int32),
        "tokenizer.ggml.bos_token_id": typed("u32", 1), "tokenizer.ggml.eos_token_id": typed("u32", 2),
        "tokenizer.ggml.unknown_token_id": typed("u32", 0), "tokenizer.ggml.add_bos_token": True,
        "tokenizer.ggml.add_space_prefix": True,
        "tokenizer.chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"}, {}))
    g = "\u0120"  # GPT-2's spelling of a space
    write("fuzz_gguf", "tokenizer-gpt2.gguf", gguf_bytes({
        "general.architecture": "opt", "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2",
        "tokenizer.ggml.tokens": ["a", "b", "ab", g, g + "a", "</s>"],
        "tokenizer.ggml.token_type": np.array([1, 1, 1, 1, 1, 3], dtype=np.int32),
        "tokenizer.ggml.merges": ["a b", g + " a"],
        "tokenizer.ggml.bos_token_id": typed("u32", 5), "tokenizer.ggml.eos_token_id": typed("u32", 5),
        "tokenizer.ggml.add_bos_token": True}, {}))


def write(harness, name, data):
    folder = os.path.join(CORPUS, harness)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main():
    # Only the folders this script writes: fuzz_gguf's seeds come from
    # tests/test_gguf.c (LZN_GGUF_SEED_DIR), see tests/fuzz/README.md, but for
    # the few gguf_seeds() writes.
    for harness in ("fuzz_safetensors", "fuzz_config", "fuzz_index", "fuzz_model", "fuzz_gguf_model"):
        if os.path.isdir(os.path.join(CORPUS, harness)):
            shutil.rmtree(os.path.join(CORPUS, harness))
    # fuzz_model: every model once with its own control byte (mlp mode,
    # tokens, logits mode, top-k and threshold vary across the seeds).
    for i, (name, kwargs) in enumerate(MODELS.items()):
        config, weights = tiny_opt(**kwargs)
        control = (i * 0x1d + (i >> 2)) & 0xff
        write("fuzz_model", name, bytes([control]) + struct.pack("<H", len(config)) + config + weights)
        if name in ("preln", "postln-2layers", "proj-postln", "f16", "nobias-noaffine"):
            write("fuzz_safetensors", name + ".safetensors", weights)
        write("fuzz_config", name + ".json", config)

    # fuzz_gguf_model: control byte, then a whole tiny GGUF model; PowerInfer
    # predictors of odd ranks (issue 24), differing by layer.
    for name, (control, kwargs) in GGUF_MODELS.items():
        write("fuzz_gguf_model", name, bytes([control]) + tiny_llama_gguf(**kwargs))

    # fuzz_safetensors: the corners of the format.
    write("fuzz_safetensors", "empty-header.safetensors", safetensors([]))
    write("fuzz_safetensors", "metadata.safetensors",
          safetensors([("a", "F32", np.ones((2, 2)))], metadata={"format": "pt"}))
    write("fuzz_safetensors", "scalar-and-empty.safetensors",
          safetensors([("s", "F32", np.float32(1.5)), ("z", "F16", np.zeros((0, 3))),
                       ("b", "BF16", np.ones(3))]))
    write("fuzz_safetensors", "unsupported-dtype.safetensors",
          safetensors([("i", "I8", np.arange(4, dtype=np.int8)), ("f", "F32", np.ones(1))]))
    write("fuzz_safetensors", "too-short", b"\x05\x00\x00")

    # fuzz_config: the fixtures' config.json, as transformers writes them.
    data = os.path.join(ROOT, "tests", "data")
    for fixture in sorted(os.listdir(data)):
        path = os.path.join(data, fixture, "config.json")
        if os.path.exists(path):
            with open(path, "rb") as f:
                write("fuzz_config", fixture + ".json", f.read())

    # fuzz_index: the sharded fixture's index, and small ones.
    with open(os.path.join(data, "opt-sharded", "model.safetensors.index.json"), "rb") as f:
        write("fuzz_index", "opt-sharded.json", f.read())
    write("fuzz_index", "small.json", json.dumps(
        {"metadata": {"total_size": 48},
         "weight_map": {"a.weight": "model-00001-of-00002.safetensors",
                        "b.weight": "model-00002-of-00002.safetensors",
                        "c.bias": "model-00001-of-00002.safetensors"}}, indent=2).encode())
    write("fuzz_index", "one.json", b'{"weight_map":{"x":"m.safetensors"}}')
    gguf_seeds()


if __name__ == "__main__":
    main()
