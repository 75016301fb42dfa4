#!/usr/bin/python3
"""Generate the OPT test fixtures in tests/data/ with an independent PyTorch reference.

Run with Debian's interpreter (it has torch; `transformers` is not needed):

    /usr/bin/python3 tools/make_fixtures.py [--out DIR]

Each fixture is a tiny OPTForCausalLM with random weights written as a Hugging Face folder
(config.json + safetensors, one file or an index with shards), plus reference.json and
logits.f32 computed by the forward below.  The forward is written from torch ops in float64
and follows transformers' modeling_opt.py (OPTDecoder / OPTDecoderLayer / OPTAttention):

  * positions = cumsum(attention_mask) * mask - 1, sliced past the cached length, looked up
    at index position + 2 in embed_positions (OPT's learned-position offset of 2);
  * inputs_embeds = embed_tokens(ids), then project_in when word_embed_proj_dim != hidden;
    hidden = inputs_embeds + pos_embeds (no embedding scale);
  * pre-LN layers:  x = x + attn(LN1(x));  x = x + fc2(relu(fc1(LN2(x))))
    post-LN layers: x = LN1(x + attn(x));  x = LN2(x + fc2(relu(fc1(x))))
  * attention: q = q_proj(x) * head_dim**-0.5, causal mask, softmax, out_proj;
  * LayerNorm eps 1e-5 with biased variance;
  * decoder final_layer_norm exists iff do_layer_norm_before and not _remove_final_layer_norm;
    then project_out; logits = x @ lm_head.T, lm_head tied to embed_tokens unless
    tie_word_embeddings is false (lm_head has no bias).

The reference always uses the weights *as stored* (rounded to F32/F16/BF16 and converted back to
float64), so a C loader that widens to float32 sees exactly the same numbers.

Everything is deterministic (fixed seeds, one thread): regenerating gives identical bytes.
"""

import argparse
import json
import os
import shutil
import struct
import sys

import torch

LN_EPS = 1e-5
POS_OFFSET = 2

# --------------------------------------------------------------------------------------------
# Fixture table
# --------------------------------------------------------------------------------------------

BASE = dict(
    hidden=60, heads=4, ffn=200, layers=2, vocab=97, max_pos=64, proj_dim=None,
    pre_ln=True, dtype="F32", prefix="model.", tied=True, shards=None,
    sparse_targets=None, minimal_config=False, enable_bias=True, ln_affine=True,
    n_tokens=13, extra=False, note="",
)


def fx(name, seed, **kw):
    d = dict(BASE)
    d.update(kw)
    d["name"] = name
    d["seed"] = seed
    return d


FIXTURES = [
    fx("opt-preln", 1001,
       note="pre-LN (do_layer_norm_before true, like opt-125m), F32, tied, `model.` prefix"),
    fx("opt-postln", 1002, hidden=40, ffn=257, vocab=101, pre_ln=False, n_tokens=64,
       note="post-LN (like opt-350m), F32, no decoder final_layer_norm; 64 tokens = "
            "max_position_embeddings, so the last row of embed_positions is used"),
    fx("opt-noprefix", 1003, hidden=42, heads=6, ffn=130, vocab=103, prefix="",
       note="tensor names without the `model.` prefix (`decoder.layers.0...`); head_dim 7"),
    fx("opt-proj", 1004, hidden=52, proj_dim=40, ffn=150, vocab=107, pre_ln=False, minimal_config=True,
       note="word_embed_proj_dim 40 != hidden 52: project_in/project_out, post-LN, like "
            "opt-350m; config.json omits enable_bias, layer_norm_elementwise_affine and "
            "tie_word_embeddings (as the real opt-350m config does) so defaults (true) apply"),
    fx("opt-bf16", 1005, vocab=109, dtype="BF16",
       note="every tensor stored as BF16; the reference uses the BF16 values widened exactly"),
    fx("opt-f16", 1006, vocab=113, dtype="F16",
       note="every tensor stored as F16 (includes F16 subnormals); the reference uses the "
            "F16 values widened exactly"),
    fx("opt-sharded", 1007, hidden=45, heads=3, ffn=150, layers=3, vocab=127, shards=3,
       note="model.safetensors.index.json + 3 shards; layer 0 is split across shards 1 and "
            "2; shard 2's JSON header lists its tensors in reverse data order (legal: "
            "offsets, not key order, define the layout)"),
    fx("opt-sparse", 1008, hidden=40, ffn=257, layers=3, vocab=131, n_tokens=17,
       sparse_targets=[0.06, 0.10, 0.14],
       note="fc1 biases shifted negative (calibrated per layer) so ~6 / 10 / 14 % of "
            "neurons fire per token"),
    fx("opt-untied", 1009, hidden=44, ffn=150, vocab=99, tied=False,
       note="tie_word_embeddings false with an explicit lm_head.weight (no bias)"),
    # Extras beyond the original list: combinations that real configs allow.
    fx("opt-proj-preln", 1010, hidden=36, heads=3, ffn=100, proj_dim=28, vocab=89,
       extra=True,
       note="EXTRA: pre-LN with project_in/out, so final_layer_norm (width hidden) runs "
            "before project_out"),
    fx("opt-nobias", 1011, hidden=36, heads=3, ffn=100, vocab=83, enable_bias=False,
       ln_affine=False, extra=True,
       note="EXTRA: enable_bias false (no q/k/v/out/fc1/fc2 biases) and "
            "layer_norm_elementwise_affine false (no LayerNorm weight/bias tensors)"),
]

# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------


def layer_names(p, i):
    b = f"{p}decoder.layers.{i}."
    return dict(
        q_w=b + "self_attn.q_proj.weight", q_b=b + "self_attn.q_proj.bias",
        k_w=b + "self_attn.k_proj.weight", k_b=b + "self_attn.k_proj.bias",
        v_w=b + "self_attn.v_proj.weight", v_b=b + "self_attn.v_proj.bias",
        o_w=b + "self_attn.out_proj.weight", o_b=b + "self_attn.out_proj.bias",
        ln1_w=b + "self_attn_layer_norm.weight", ln1_b=b + "self_attn_layer_norm.bias",
        fc1_w=b + "fc1.weight", fc1_b=b + "fc1.bias",
        fc2_w=b + "fc2.weight", fc2_b=b + "fc2.bias",
        ln2_w=b + "final_layer_norm.weight", ln2_b=b + "final_layer_norm.bias",
    )


def has_final_ln(cfg):
    # modeling_opt: final_layer_norm iff do_layer_norm_before and not _remove_final_layer_norm
    return cfg["pre_ln"]


def make_master_weights(cfg):
    """float64 'master' weights in HF module order (dict preserves insertion order)."""
    g = torch.Generator().manual_seed(cfg["seed"])
    H, F, V, L = cfg["hidden"], cfg["ffn"], cfg["vocab"], cfg["layers"]
    P = cfg["proj_dim"] or H
    p = cfg["prefix"]

    def rn(*shape, std):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * std

    w = {}
    w[p + "decoder.embed_tokens.weight"] = rn(V, P, std=0.3)
    w[p + "decoder.embed_positions.weight"] = rn(cfg["max_pos"] + POS_OFFSET, H, std=0.2)
    if cfg["proj_dim"]:
        w[p + "decoder.project_in.weight"] = rn(H, P, std=P ** -0.5)
    for i in range(L):
        n = layer_names(p, i)
        for key in ("q", "k", "v", "o"):
            std = 0.15 if key in ("q", "k") else H ** -0.5
            w[n[key + "_w"]] = rn(H, H, std=std)
            if cfg["enable_bias"]:
                w[n[key + "_b"]] = rn(H, std=0.1)
        if cfg["ln_affine"]:
            w[n["ln1_w"]] = 1.0 + rn(H, std=0.1)
            w[n["ln1_b"]] = rn(H, std=0.1)
        w[n["fc1_w"]] = rn(F, H, std=H ** -0.5)
        if cfg["enable_bias"]:
            w[n["fc1_b"]] = rn(F, std=0.1)
        w[n["fc2_w"]] = rn(H, F, std=0.7 * F ** -0.5)
        if cfg["enable_bias"]:
            w[n["fc2_b"]] = rn(H, std=0.1)
        if cfg["ln_affine"]:
            w[n["ln2_w"]] = 1.0 + rn(H, std=0.1)
            w[n["ln2_b"]] = rn(H, std=0.1)
    if has_final_ln(cfg) and cfg["ln_affine"]:
        w[p + "decoder.final_layer_norm.weight"] = 1.0 + rn(H, std=0.1)
        w[p + "decoder.final_layer_norm.bias"] = rn(H, std=0.1)
    if cfg["proj_dim"]:
        w[p + "decoder.project_out.weight"] = rn(P, H, std=H ** -0.5)
    if not cfg["tied"]:
        w["lm_head.weight"] = rn(V, P, std=0.3)
    return w


STORE_DTYPE = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def to_storage(w, dtype):
    """Round every tensor to the storage dtype (round-to-nearest-even in torch)."""
    return {k: v.to(STORE_DTYPE[dtype]).contiguous() for k, v in w.items()}


def widen(stored):
    return {k: v.to(torch.float64) for k, v in stored.items()}


# --------------------------------------------------------------------------------------------
# Reference forward (float64)
# --------------------------------------------------------------------------------------------


def layer_norm(x, w, b):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # biased, as torch.nn.LayerNorm
    y = (x - mean) / torch.sqrt(var + LN_EPS)
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y


def linear(x, w, b):
    y = x @ w.T
    if b is not None:
        y = y + b
    return y


def forward(cfg, W, tokens, cache=None, record=None):
    """Forward `tokens` (list of ids) after the cached ones.

    cache: list (per layer) of [K, V] with K, V shaped [heads, past, head_dim]; updated in
    place.  record: optional dict collecting per-layer fc1 pre-activations [n, F].
    Returns logits [n, vocab] (float64).
    """
    H, nh, L = cfg["hidden"], cfg["heads"], cfg["layers"]
    hd = H // nh
    p = cfg["prefix"]
    n = len(tokens)
    past = cache[0][0].shape[1] if cache is not None and cache[0] is not None else 0

    ids = torch.tensor(tokens, dtype=torch.long)
    # HF: position_ids = (cumsum(mask) * mask - 1)[:, past:]  with an all-ones mask
    mask = torch.ones(past + n, dtype=torch.float64)
    pos = (torch.cumsum(mask, 0) * mask - 1).long()[past:]
    assert pos.tolist() == list(range(past, past + n))
    if int(pos.max()) >= cfg["max_pos"]:
        raise ValueError("sequence longer than max_position_embeddings")

    x = W[p + "decoder.embed_tokens.weight"][ids]
    if cfg["proj_dim"]:
        x = linear(x, W[p + "decoder.project_in.weight"], None)
    x = x + W[p + "decoder.embed_positions.weight"][pos + POS_OFFSET]

    scaling = hd ** -0.5
    q_pos = torch.arange(past, past + n).unsqueeze(1)
    k_pos = torch.arange(past + n).unsqueeze(0)
    causal = k_pos > q_pos  # [n, past+n]: True where masked

    for i in range(L):
        nm = layer_names(p, i)
        g = W.get
        # ---- attention block ----
        residual = x
        h = layer_norm(x, g(nm["ln1_w"]), g(nm["ln1_b"])) if cfg["pre_ln"] else x
        q = linear(h, W[nm["q_w"]], g(nm["q_b"])) * scaling
        k = linear(h, W[nm["k_w"]], g(nm["k_b"]))
        v = linear(h, W[nm["v_w"]], g(nm["v_b"]))
        q = q.view(n, nh, hd).transpose(0, 1)  # [nh, n, hd]
        k = k.view(n, nh, hd).transpose(0, 1)
        v = v.view(n, nh, hd).transpose(0, 1)
        if cache is not None:
            if cache[i] is not None:
                k = torch.cat([cache[i][0], k], dim=1)
                v = torch.cat([cache[i][1], v], dim=1)
            cache[i] = [k, v]
        scores = q @ k.transpose(1, 2)  # [nh, n, past+n]
        scores = scores.masked_fill(causal.unsqueeze(0), float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        a = (probs @ v).transpose(0, 1).reshape(n, H)
        a = linear(a, W[nm["o_w"]], g(nm["o_b"]))
        x = residual + a
        if not cfg["pre_ln"]:
            x = layer_norm(x, g(nm["ln1_w"]), g(nm["ln1_b"]))
        # ---- MLP block ----
        residual = x
        h = layer_norm(x, g(nm["ln2_w"]), g(nm["ln2_b"])) if cfg["pre_ln"] else x
        pre = linear(h, W[nm["fc1_w"]], g(nm["fc1_b"]))
        act = torch.relu(pre)
        y = linear(act, W[nm["fc2_w"]], g(nm["fc2_b"]))
        # (b) sparse down-projection from only the active rows equals dense
        ys = sparse_fc2(act, W[nm["fc2_w"]], g(nm["fc2_b"]))
        err = (ys - y).abs().max().item()
        assert err <= 1e-12 * max(1.0, y.abs().max().item()), ("sparse fc2 != dense", err)
        if record is not None:
            record.setdefault(i, []).append(pre)
        x = residual + y
        if not cfg["pre_ln"]:
            x = layer_norm(x, g(nm["ln2_w"]), g(nm["ln2_b"]))

    if has_final_ln(cfg):
        x = layer_norm(x, W.get(p + "decoder.final_layer_norm.weight"),
                       W.get(p + "decoder.final_layer_norm.bias"))
    if cfg["proj_dim"]:
        x = linear(x, W[p + "decoder.project_out.weight"], None)
    head = W[p + "decoder.embed_tokens.weight"] if cfg["tied"] else W["lm_head.weight"]
    return x @ head.T


def sparse_fc2(act, w2, b2):
    """y = b + sum over i with act_i > 0 of act_i * W2[:, i], using W2 transposed rows."""
    w2t = w2.T.contiguous()  # [F, H]: one row per neuron, as the C library stores it
    out = torch.zeros(act.shape[0], w2.shape[0], dtype=torch.float64)
    for t in range(act.shape[0]):
        idx = torch.nonzero(act[t] > 0).flatten()
        out[t] = act[t, idx] @ w2t[idx]
        if b2 is not None:
            out[t] += b2
    return out


def new_cache(cfg):
    return [None] * cfg["layers"]


def check_decode(cfg, W, tokens, full):
    """(a) incremental KV-cache forwards equal the full forward within 1e-10."""
    n = len(tokens)
    splits = [[n // 2] + [1] * (n - n // 2), [1] * n, [3, 1, 4, 1, 5] + [1] * max(0, n - 14)]
    worst = 0.0
    for sp in splits:
        sp = [s for s in sp if s > 0]
        while sum(sp) > n:
            sp.pop()
        if sum(sp) < n:
            sp.append(n - sum(sp))
        cache = new_cache(cfg)
        outs, at = [], 0
        for s in sp:
            outs.append(forward(cfg, W, tokens[at:at + s], cache=cache))
            at += s
        inc = torch.cat(outs, dim=0)
        worst = max(worst, (inc - full).abs().max().item())
    assert worst < 1e-10, ("incremental decode differs from full forward", worst)
    return worst


def check_layernorm_against_torch():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(5, 19, generator=g, dtype=torch.float64) * 3 + 1
    w = torch.randn(19, generator=g, dtype=torch.float64)
    b = torch.randn(19, generator=g, dtype=torch.float64)
    ref = torch.nn.functional.layer_norm(x, (19,), w, b, eps=LN_EPS)
    assert (layer_norm(x, w, b) - ref).abs().max().item() < 1e-12


# --------------------------------------------------------------------------------------------
# Sparse calibration
# --------------------------------------------------------------------------------------------


def calibrate_sparse(cfg, master, tokens):
    """Shift each layer's fc1 bias by a scalar so that about `target` of the fc1 outputs are
    positive over `tokens`.  Layer by layer, because layer l's bias changes layers > l."""
    p = cfg["prefix"]
    for i, target in enumerate(cfg["sparse_targets"]):
        W = widen(to_storage(master, cfg["dtype"]))
        rec = {}
        forward(cfg, W, tokens, record=rec)
        pre = rec[i][0]
        shift = torch.quantile(pre.flatten(), 1.0 - target).item()
        name = f"{p}decoder.layers.{i}.fc1.bias"
        master[name] = master[name] - shift
    return master


# --------------------------------------------------------------------------------------------
# Keep every fc1 pre-activation away from 0
# --------------------------------------------------------------------------------------------

MARGIN = 1e-3  # |fc1 pre-activation| >= MARGIN for every token/neuron: fp32 can't flip a sign


def preacts(cfg, master, tokens):
    W = widen(to_storage(master, cfg["dtype"]))
    rec = {}
    forward(cfg, W, tokens, record=rec)
    return [rec[i][0] for i in range(cfg["layers"])]


def ensure_margin(cfg, master, tokens):
    """Nudge single fc1 bias entries (layer by layer, as stored after rounding) so that no
    fc1 pre-activation of the fixture's tokens lies within MARGIN of zero.  The ReLU pattern,
    and so active_fraction / never_fired / active_counts, is then the same in float32.
    Returns the number of biases nudged."""
    p = cfg["prefix"]
    dt = STORE_DTYPE[cfg["dtype"]]
    nudged = 0
    for i in range(cfg["layers"]):
        pre = preacts(cfg, master, tokens)[i]  # [n, F]
        name = f"{p}decoder.layers.{i}.fc1.bias"
        bad = torch.nonzero((pre.abs() < MARGIN).any(dim=0)).flatten().tolist()
        for j in bad:
            b_old = master[name][j].to(dt).double().item()
            for k in range(2, 200):
                delta = (k // 2 + 1) * MARGIN * (1 if k % 2 == 0 else -1)
                b_new = torch.tensor(b_old + delta, dtype=torch.float64).to(dt).double().item()
                if ((pre[:, j] + (b_new - b_old)).abs() >= 1.5 * MARGIN).all():
                    master[name][j] = b_new
                    nudged += 1
                    break
            else:
                raise RuntimeError("cannot move fc1 bias %s[%d] off the margin" % (name, j))
        pre = preacts(cfg, master, tokens)[i]
        assert pre.abs().min().item() >= MARGIN, (cfg["name"], i, pre.abs().min().item())
    return nudged


# --------------------------------------------------------------------------------------------
# safetensors writer
# --------------------------------------------------------------------------------------------

ST_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def tensor_bytes(t):
    assert sys.byteorder == "little"
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.float16:
        return t.numpy().astype("<f2").tobytes()
    return t.numpy().astype("<f4").tobytes()


def safetensors_bytes(tensors, header_order=None):
    """tensors: list of (name, tensor) in data order.  header_order: optional list of names
    giving the JSON key order (default: the data order, as the safetensors library does)."""
    header, blobs, off = {}, [], 0
    entries = {}
    for name, t in tensors:
        b = tensor_bytes(t)
        entries[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape),
                         "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    for name in (header_order or [n for n, _ in tensors]):
        header[name] = entries[name]
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)
    return struct.pack("<Q", len(hj)) + hj + b"".join(blobs), off


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def config_json(cfg):
    P = cfg["proj_dim"] or cfg["hidden"]
    c = {
        "_name_or_path": "lazyneuron/tests/data/" + cfg["name"],
        "_remove_final_layer_norm": False,
        "activation_dropout": 0.0,
        "activation_function": "relu",
        "architectures": ["OPTForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 2,
        "do_layer_norm_before": cfg["pre_ln"],
        "dropout": 0.1,
        "enable_bias": cfg["enable_bias"],
        "eos_token_id": 2,
        "ffn_dim": cfg["ffn"],
        "hidden_size": cfg["hidden"],
        "init_std": 0.02,
        "layer_norm_elementwise_affine": cfg["ln_affine"],
        "layerdrop": 0.0,
        "max_position_embeddings": cfg["max_pos"],
        "model_type": "opt",
        "num_attention_heads": cfg["heads"],
        "num_hidden_layers": cfg["layers"],
        "pad_token_id": 1,
        "prefix": "</s>",
        "tie_word_embeddings": cfg["tied"],
        "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[cfg["dtype"]],
        "transformers_version": "4.40.0",
        "use_cache": True,
        "vocab_size": cfg["vocab"],
        "word_embed_proj_dim": P,
    }
    if cfg["minimal_config"]:
        assert cfg["enable_bias"] and cfg["ln_affine"] and cfg["tied"]
        for k in ("enable_bias", "layer_norm_elementwise_affine", "tie_word_embeddings"):
            del c[k]
    return json.dumps(c, indent=2, sort_keys=True) + "\n"


def make_tokens(cfg):
    """Fixed ids: includes 0, 1 (= pad_token_id: its embedding row is an ordinary row),
    2 (bos/eos) and vocab-1, plus a repeat, and seeded random ids for the rest."""
    g = torch.Generator().manual_seed(cfg["seed"] + 500)
    V, n = cfg["vocab"], cfg["n_tokens"]
    base = [2, V - 1, 0, 1, 7]
    rest = torch.randint(0, V, (n,), generator=g).tolist()
    toks = (base + rest)[:n]
    toks[-1] = toks[1]  # a repeated token
    return toks


def write_file(path, data, written):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    written.append((path, os.path.getsize(path)))


def shard_plan(names, n_shards):
    """Split the (sorted) tensor names into n contiguous groups of roughly equal count."""
    per = -(-len(names) // n_shards)
    return [names[i * per:(i + 1) * per] for i in range(n_shards)]


def build(cfg, out_root):
    written = []
    d = os.path.join(out_root, cfg["name"])
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)

    tokens = make_tokens(cfg)
    master = make_master_weights(cfg)
    if cfg["sparse_targets"]:
        master = calibrate_sparse(cfg, master, tokens)
    if cfg["enable_bias"]:
        nudged = ensure_margin(cfg, master, tokens)
    else:
        # no fc1 bias to nudge: take the first seed whose pre-activations keep the margin
        base_seed = cfg["seed"]
        for attempt in range(1000):
            pre = preacts(cfg, master, tokens)
            if min(x.abs().min().item() for x in pre) >= MARGIN:
                break
            cfg = dict(cfg, seed=base_seed + 100000 * (attempt + 1))
            master = make_master_weights(cfg)
        else:
            raise RuntimeError("no seed keeps the fc1 margin")
        nudged = 0
    stored = to_storage(master, cfg["dtype"])
    W = widen(stored)

    rec = {}
    logits = forward(cfg, W, tokens, record=rec)
    decode_err = check_decode(cfg, W, tokens, logits)

    F = cfg["ffn"]
    active_fraction, never_fired, active_counts, min_abs_pre = [], [], [], []
    for i in range(cfg["layers"]):
        pre = rec[i][0]
        on = pre > 0
        active_counts.append(on.sum(dim=1).tolist())
        active_fraction.append(round(on.double().mean().item(), 6))
        never_fired.append(int((~on.any(dim=0)).sum().item()))
        min_abs_pre.append(float("%.3g" % pre.abs().min().item()))

    logits32 = logits.to(torch.float32)
    top2 = torch.topk(logits, 2, dim=-1).values
    argmax = torch.argmax(logits, dim=-1).tolist()
    min_gap = (top2[:, 0] - top2[:, 1]).min().item()
    write_file(os.path.join(d, "logits.f32"), tensor_bytes(logits32), written)

    # safetensors: tensors sorted by name, header order == data order (like the safetensors
    # library for a single dtype), except where a fixture says otherwise.
    names = sorted(stored)
    if cfg["shards"]:
        groups = shard_plan(names, cfg["shards"])
        ns = len(groups)
        weight_map, total = {}, 0
        for si, grp in enumerate(groups):
            fname = "model-%05d-of-%05d.safetensors" % (si + 1, ns)
            order = list(reversed(grp)) if si == 1 else None
            blob, nbytes = safetensors_bytes([(n, stored[n]) for n in grp], header_order=order)
            total += nbytes
            write_file(os.path.join(d, fname), blob, written)
            for n in grp:
                weight_map[n] = fname
        index = {"metadata": {"total_size": total},
                 "weight_map": {k: weight_map[k] for k in sorted(weight_map)}}
        write_file(os.path.join(d, "model.safetensors.index.json"),
                   json.dumps(index, indent=2) + "\n", written)
    else:
        blob, _ = safetensors_bytes([(n, stored[n]) for n in names])
        write_file(os.path.join(d, "model.safetensors"), blob, written)

    write_file(os.path.join(d, "config.json"), config_json(cfg), written)

    n_sub = 0
    if cfg["dtype"] == "F16":
        n_sub = sum(int(((v != 0) & (v.abs() < 2.0 ** -14)).sum().item()) for v in stored.values())

    ref = {
        "tokens": tokens,
        "n_tokens": len(tokens),
        "vocab_size": cfg["vocab"],
        "logits_file": "logits.f32",
        "logits_shape": [len(tokens), cfg["vocab"]],
        "active_fraction": active_fraction,
        "never_fired": never_fired,
        "active_counts": active_counts,
        "min_abs_fc1_preactivation": min_abs_pre,
        "logit_scale": float(logits32.abs().max().item()),
        "argmax": argmax,
        "min_top2_gap": float("%.3g" % min_gap),
        "fc1_biases_nudged": nudged,
        "seed": cfg["seed"],
        "decode_check": True,
        "decode_max_abs_diff": float("%.3g" % decode_err),
        "storage_dtype": cfg["dtype"],
        "description": cfg["note"],
    }
    write_file(os.path.join(d, "reference.json"), json.dumps(ref, indent=1) + "\n", written)
    return written, ref, n_sub


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(repo_root(), "tests", "data"),
                    help="output directory (default: tests/data in the repo)")
    ap.add_argument("--only", action="append", help="generate only this fixture (repeatable)")
    args = ap.parse_args()

    torch.set_num_threads(1)  # fixed summation order => identical bytes on every run
    torch.manual_seed(0)
    check_layernorm_against_torch()
    os.makedirs(args.out, exist_ok=True)

    total = 0
    for cfg in FIXTURES:
        if args.only and cfg["name"] not in args.only:
            continue
        written, ref, n_sub = build(cfg, args.out)
        sz = sum(s for _, s in written)
        total += sz
        P = cfg["proj_dim"] or cfg["hidden"]
        print("%s: hidden %d heads %d (head_dim %d) ffn %d layers %d vocab %d proj %d %s %s"
              % (cfg["name"], cfg["hidden"], cfg["heads"], cfg["hidden"] // cfg["heads"],
                 cfg["ffn"], cfg["layers"], cfg["vocab"], P, cfg["dtype"],
                 "pre-LN" if cfg["pre_ln"] else "post-LN"))
        print("  seed %d  nudged %d  min|pre| %s  min top2 gap %.3g"
              % (ref["seed"], ref["fc1_biases_nudged"], ref["min_abs_fc1_preactivation"],
                 ref["min_top2_gap"]))
        print("  tokens %d  logit_scale %.3f  active_fraction %s  never_fired %s  "
              "decode max|diff| %.2g%s"
              % (ref["n_tokens"], ref["logit_scale"], ref["active_fraction"],
                 ref["never_fired"], ref["decode_max_abs_diff"],
                 ("  f16 subnormals %d" % n_sub) if cfg["dtype"] == "F16" else ""))
        for path, s in written:
            print("  wrote %-60s %8d bytes" % (os.path.relpath(path), s))
    print("total %d bytes" % total)


if __name__ == "__main__":
    main()
