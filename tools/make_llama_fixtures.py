#!/usr/bin/python3
"""Generate the LLaMA-family test fixtures in tests/data/llama-*/ with the independent float64
reference of tools/llama_reference.py.

Run with Debian's interpreter (it has torch; `transformers` and `safetensors` are not needed):

    /usr/bin/python3 tools/make_llama_fixtures.py [--out DIR] [--only llama-gqa ...]

Each fixture is a tiny 2-layer decoder with random weights written as a Hugging Face folder
(config.json + model.safetensors with HF tensor names), plus reference.json and logits.f32 in the
format of the OPT fixtures (see tests/data/README.md).  As there, the reference runs in float64
on the weights *as stored* (rounded to F32/F16/BF16, then widened), and everything is
deterministic (fixed seeds, one thread): regenerating gives identical bytes.

The ReLU-family MLPs are made genuinely sparse: LLaMA has no MLP bias, so each layer's gate
matrix gets a rank-one shift along the mean direction of its input (a bias in disguise, since
the embeddings share a common component), found by bisection so that the fraction of active
neurons over the fixture's tokens hits a per-layer target.  Then single gate (and, for dReLU,
up) weights are nudged so that no pre-activation lies within MARGIN of the activation's switch
point, so a float32 forward gives exactly the same active set.
"""

import argparse
import json
import math
import os
import shutil
import struct
import sys

import torch

sys.dont_write_bytecode = True   # write nothing into tools/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as lr  # noqa: E402
import make_fixtures as mf    # noqa: E402  (safetensors writer, storage rounding, write_file)

MARGIN = 1e-3   # |gate - switch point| >= MARGIN for every token and neuron: fp32 can't flip it
MAX_POS = 64

# --------------------------------------------------------------------------------------------
# Fixture table
# --------------------------------------------------------------------------------------------

BASE = dict(
    arch="LlamaForCausalLM", hidden=40, heads=4, kv=2, head_dim=None, ffn=67, layers=2,
    vocab=97, act="relu", act_param=None, attention_bias=False, rope_theta=10000.0,
    rope_scaling=None, tied=False, dtype="F32", eps=1e-5, n_tokens=13, targets=(0.15, 0.25),
    minimal_config=False, sliding_window=None, note="",
)


def fx(name, seed, **kw):
    d = dict(BASE)
    d.update(kw)
    d["name"], d["seed"] = name, seed
    return d


FIXTURES = [
    fx("llama-gqa", 2001,
       note="baseline ReluLLaMA: relu gated MLP, GQA 4 query heads / 2 KV heads (head_dim 10), "
            "untied lm_head, ffn 67"),
    fx("llama-mha", 2002, hidden=36, heads=3, kv=3, ffn=70, vocab=101, eps=1e-6,
       minimal_config=True, targets=(0.2, 0.1),
       note="MHA (KV heads = heads, head_dim 12); LLaMA-1 style config.json without "
            "num_key_value_heads, rope_theta, attention_bias and tie_word_embeddings, so the "
            "defaults apply (KV heads = heads, theta 10000, no bias, UNTIED); eps 1e-6"),
    fx("llama-mqa", 2003, kv=1, ffn=61, vocab=103, tied=True, targets=(0.1, 0.3),
       note="MQA (1 KV head shared by 4 query heads), tie_word_embeddings true (no "
            "lm_head.weight in the file)"),
    fx("llama-headdim", 2004, hidden=32, heads=4, kv=2, head_dim=20, ffn=53, vocab=89,
       rope_scaling={"factor": 4.0, "rope_type": "linear"}, targets=(0.2, 0.2),
       note="explicit head_dim 20 != hidden/heads (q_proj [80,32], o_proj [32,80], as HF >= 4.45 "
            "reads it); rope_scaling spelled with the newer key rope_type (linear, factor 4)"),
    fx("llama-fatrelu", 2005, vocab=107, act="fatrelu", act_param=0.25, targets=(0.2, 0.15),
       note="ProSparse / MiniCPM-S FATReLU: hidden_act fatrelu, hidden_act_param 0.25 (gate "
            "kept iff gate > 0.25); some gate values lie in (0, 0.25], so plain relu differs"),
    fx("llama-drelu", 2006, arch="BambooForCausalLM", vocab=109, targets=(0.12, 0.2),
       note="TurboSparse / Bamboo dReLU: architectures BambooForCausalLM with hidden_act relu; "
            "the MLP is down(relu(gate) * relu(up)), active = both positive"),
    fx("llama-silu", 2007, vocab=113, act="silu", targets=None,
       note="plain LLaMA SwiGLU (hidden_act silu): dense, every neuron active (active_fraction "
            "1.0); checks the non-ReLU path"),
    fx("llama-bias", 2008, vocab=127, attention_bias=True, targets=(0.25, 0.15),
       note="attention_bias true: q/k/v/o_proj have biases (the bias is added before RoPE)"),
    fx("llama-rope", 2109, vocab=131, rope_theta=500000.0,
       rope_scaling={"factor": 2.0, "type": "linear"}, n_tokens=MAX_POS, targets=(0.15, 0.2),
       note="rope_theta 500000 and rope_scaling {type: linear, factor 2} (positions halved); "
            "64 tokens = max_position_embeddings"),
    fx("llama-mistral", 2010, arch="MistralForCausalLM", hidden=48, heads=4, kv=2, ffn=59,
       vocab=137, rope_theta=1000000.0, targets=(0.3, 0.1),
       note="MistralForCausalLM (model_type mistral, like TurboSparse-Mistral with relu): "
            "sliding_window null, rope_theta 1e6, no attention_bias key; head_dim 12"),
    fx("llama-bf16", 2011, vocab=139, dtype="BF16",
       note="llama-gqa's shapes with every tensor stored as BF16"),
    fx("llama-f16", 2012, vocab=149, dtype="F16",
       note="llama-gqa's shapes with every tensor stored as F16 (includes F16 subnormals)"),
]


# --------------------------------------------------------------------------------------------
# config.json
# --------------------------------------------------------------------------------------------


def config_dict(f):
    mistral = f["arch"] != "LlamaForCausalLM"
    c = {
        "_name_or_path": "lazyneuron/tests/data/" + f["name"],
        "architectures": [f["arch"]],
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": f["act"],
        "hidden_size": f["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": f["ffn"],
        "max_position_embeddings": MAX_POS,
        "model_type": {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
                       "BambooForCausalLM": "bamboo"}[f["arch"]],
        "num_attention_heads": f["heads"],
        "num_hidden_layers": f["layers"],
        "num_key_value_heads": f["kv"],
        "rms_norm_eps": f["eps"],
        "rope_theta": f["rope_theta"],
        "tie_word_embeddings": f["tied"],
        "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[f["dtype"]],
        "transformers_version": "4.45.0",
        "use_cache": True,
        "vocab_size": f["vocab"],
    }
    if f["act"] == "drelu":
        raise ValueError("write dReLU as arch BambooForCausalLM with act relu")
    if not mistral:
        c.update(attention_bias=f["attention_bias"], mlp_bias=False, pretraining_tp=1,
                 rope_scaling=f["rope_scaling"])
    else:
        assert not f["attention_bias"] and f["rope_scaling"] is None
        c["sliding_window"] = f["sliding_window"]
    if f["head_dim"]:
        c["head_dim"] = f["head_dim"]
    if f["act"] == "fatrelu":
        c["hidden_act_param"] = f["act_param"]
    if f["minimal_config"]:
        assert f["kv"] == f["heads"] and not f["attention_bias"] and not f["tied"]
        assert f["rope_theta"] == 10000.0 and f["rope_scaling"] is None
        for k in ("num_key_value_heads", "rope_theta", "attention_bias", "tie_word_embeddings",
                  "mlp_bias", "rope_scaling"):
            del c[k]
    return c


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------


def make_master_weights(f, c):
    """float64 master weights, HF names.  Embedding rows share a common component (mu) as real
    residual streams do; the gate shift below uses it as a bias."""
    g = torch.Generator().manual_seed(f["seed"])
    shapes = lr.tensor_shapes(c)
    H = f["hidden"]

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    mu = randn(H)
    W = {}
    for name in sorted(shapes):
        shape = shapes[name]
        if name == "model.embed_tokens.weight":
            W[name] = 0.6 * randn(*shape) + 0.5 * mu
        elif name == "lm_head.weight":
            W[name] = 0.3 * randn(*shape)
        elif name.endswith("layernorm.weight") or name == "model.norm.weight":
            W[name] = 1.0 + 0.1 * randn(*shape)
        elif name.endswith(".bias"):
            W[name] = 0.1 * randn(*shape)
        elif name.endswith(("q_proj.weight", "k_proj.weight")):
            W[name] = 0.8 / math.sqrt(shape[1]) * randn(*shape)
        elif name.endswith("down_proj.weight"):
            W[name] = 0.7 / math.sqrt(shape[1]) * randn(*shape)
        else:   # v, o, gate, up
            W[name] = 1.0 / math.sqrt(shape[1]) * randn(*shape)
    return W


def stored_of(f, master):
    return mf.to_storage(master, f["dtype"])


def run(f, c, master, tokens):
    W = mf.widen(stored_of(f, master))
    rec = {}
    logits = lr.forward(c, W, tokens, record=rec)
    return W, rec, logits


# --------------------------------------------------------------------------------------------
# Sparsity calibration and the margin
# --------------------------------------------------------------------------------------------


def calibrate(f, c, master, tokens):
    """Per layer, in order: W_gate -= s * outer(1, m / |m|^2) with m the mean MLP input, s by
    bisection so that the active fraction over `tokens` is the layer's target."""
    for i, target in enumerate(f["targets"]):
        name = lr.layer_names(i)["gate"]
        _, rec, _ = run(f, c, master, tokens)
        m = rec[i]["h"].mean(dim=0)
        u = m / (m @ m)
        base = master[name].clone()
        lo, hi = -20.0, 20.0
        for _ in range(50):
            s = 0.5 * (lo + hi)
            master[name] = base - s * u
            _, rec, _ = run(f, c, master, tokens)
            frac = rec[i]["active"].double().mean().item()
            if frac > target:
                lo = s
            else:
                hi = s
        master[name] = base - hi * u
    return master


def margins(c, r):
    """Distances of the switch-point inputs from the switch point, [n, F] each."""
    thr = lr.threshold(c)
    out = [(r["gate"] - thr).abs()]
    if lr.activation(c) == "drelu":
        out.append(r["up"].abs())
    return out


def nudge_directions(h, pre_j, t0, k_star):
    """Candidate unit changes of one weight row, best first: the one-signed coordinate k* (if
    any), then the 8 coordinates where the closest token's input is largest, then that input
    itself scaled to shift the closest token by exactly delta."""
    H = h.shape[1]
    out = []
    if k_star is not None:
        out.append(torch.nn.functional.one_hot(torch.tensor(k_star), H).double())
    t = int(torch.argmin((pre_j - t0).abs()).item())
    for k in torch.argsort(h[t].abs(), descending=True)[:8].tolist():
        if k != k_star:
            out.append(torch.nn.functional.one_hot(torch.tensor(k), H).double())
    out.append(h[t] / (h[t] @ h[t]))
    return out


def ensure_margin(f, c, master, tokens):
    """Nudge each offending gate (dReLU: also up) row by a few MARGIN, on the stored grid, so
    that no input of the activation's switch lies within MARGIN of it.  The preferred change is
    one weight on the input coordinate k* whose value has one sign and the largest minimum
    magnitude (> 0.1) over the tokens, so every token's pre-activation moves the same way; when
    that does not work (or no such coordinate exists, as in a trained model), the candidates of
    nudge_directions are tried in order, each checked exactly on every token.  Layer by layer,
    because a nudge in layer l changes the inputs of layers > l.  Returns the count."""
    if lr.activation(c) == "silu":
        return 0
    dt = mf.STORE_DTYPE[f["dtype"]]
    thr = lr.threshold(c)
    nudged = 0
    for i in range(f["layers"]):
        nm = lr.layer_names(i)
        _, rec, _ = run(f, c, master, tokens)
        h = rec[i]["h"]
        score = torch.where(h.min(dim=0).values > 0, h.min(dim=0).values,
                            torch.where(h.max(dim=0).values < 0, -h.max(dim=0).values,
                                        torch.zeros_like(h[0])))
        k = int(torch.argmax(score).item())
        k_star = k if score[k] > 0.1 else None
        which = [("gate", rec[i]["gate"], thr)]
        if lr.activation(c) == "drelu":
            which.append(("up", rec[i]["up"], 0.0))
        for key, pre, t0 in which:
            name = nm[key]
            bad = torch.nonzero(((pre - t0).abs() < 1.5 * MARGIN).any(dim=0)).flatten().tolist()
            for j in bad:
                row_old = master[name][j].to(dt).double()
                done = False
                for e in nudge_directions(h, pre[:, j], t0, k_star):
                    for step in range(2, 400):
                        delta = (step // 2 + 1) * MARGIN * (1 if step % 2 == 0 else -1)
                        row_new = (row_old + delta * e).to(dt).double()
                        moved = pre[:, j] + h @ (row_new - row_old)
                        if ((moved - t0).abs() >= 2 * MARGIN).all():
                            master[name][j] = row_new
                            nudged += 1
                            done = True
                            break
                    if done:
                        break
                if not done:
                    raise RuntimeError("cannot move %s[%d] off the margin" % (name, j))
        _, rec, _ = run(f, c, master, tokens)
        worst = min(x.min().item() for x in margins(c, rec[i]))
        assert worst >= MARGIN, (f["name"], i, worst)
    return nudged


# --------------------------------------------------------------------------------------------
# Sensitivity: plausible implementation mistakes must move the logits well beyond tolerance
# --------------------------------------------------------------------------------------------


def permute_heads_rows(w, n_heads, hd, perm_in_head=None, head_perm=None):
    """Rows of a q/k projection (weight [n_heads*hd, H] or bias) regrouped per head."""
    x = w.reshape(n_heads, hd, *w.shape[1:])
    if head_perm is not None:
        x = x[head_perm]
    if perm_in_head is not None:
        x = x[:, perm_in_head]
    return x.reshape(w.shape)


def mistakes(c):
    """{name: (config, weight transform)} for the mistakes that apply to this config.  Each is
    expressed as a change of config or weights, evaluated with the correct forward:
      gqa_modulo      query head j reads KV head j % n_kv instead of j // (heads / n_kv)
                      (= the correct mapping after a permutation of the query heads)
      rope_interleaved rotary pairs (2i, 2i+1) instead of (i, i + head_dim/2)
                      (= the correct pairing after permuting q/k rows inside every head)
      no_rope_scaling, theta_10000, fatrelu_as_relu, drelu_as_relu, no_attention_bias,
      eps_1e-5 (for a config whose eps is 1e-6)."""
    hd, nh, nkv = lr.head_dim(c), c["num_attention_heads"], lr.n_kv_heads(c)
    L = c["num_hidden_layers"]
    out = {}

    def with_cfg(**kw):
        d = dict(c)
        d.update(kw)
        return d

    def tf_rows(perm_in_head=None, head_perm=None):
        def tf(W):
            W = dict(W)
            for i in range(L):
                nm = lr.layer_names(i)
                for key, n in (("q", nh), ("qb", nh), ("k", nkv), ("kb", nkv)):
                    if nm[key] in W:
                        hp = head_perm if key in ("q", "qb") else None
                        W[nm[key]] = permute_heads_rows(W[nm[key]], n, hd,
                                                        perm_in_head=perm_in_head, head_perm=hp)
                if head_perm is not None:   # o_proj columns follow the query heads
                    o = W[nm["o"]].reshape(-1, nh, hd)[:, head_perm]
                    W[nm["o"]] = o.reshape(W[nm["o"]].shape)
            return W
        return tf

    if 1 < nkv < nh:
        rep = nh // nkv
        slots = {kv: list(range(kv * rep, kv * rep + rep)) for kv in range(nkv)}
        pos = [None] * nh
        for j in range(nh):
            pos[slots[j % nkv].pop(0)] = j
        out["gqa_modulo"] = (c, tf_rows(head_perm=pos))
    inter = list(range(0, hd, 2)) + list(range(1, hd, 2))
    out["rope_interleaved"] = (c, tf_rows(perm_in_head=inter))
    if c.get("rope_scaling"):
        out["no_rope_scaling"] = (with_cfg(rope_scaling=None), None)
    if float(c.get("rope_theta", 10000.0)) != 10000.0:
        out["theta_10000"] = (with_cfg(rope_theta=10000.0), None)
    if lr.activation(c) == "fatrelu":
        out["fatrelu_as_relu"] = (with_cfg(hidden_act="relu", hidden_act_param=0.0), None)
    if lr.activation(c) == "drelu":
        out["drelu_as_relu"] = (with_cfg(architectures=["LlamaForCausalLM"]), None)
    if c.get("attention_bias"):
        def no_bias(W):
            return {k: v for k, v in W.items() if not k.endswith(".bias")}
        out["no_attention_bias"] = (with_cfg(attention_bias=False), no_bias)
    if float(c["rms_norm_eps"]) != 1e-5:
        out["eps_1e-5"] = (with_cfg(rms_norm_eps=1e-5), None)
    return out


def sensitivity(c, W, tokens, logits):
    """max |logit - mistaken logit| / max |logit| per mistake (the C test's scale)."""
    scale = logits.abs().max().item()
    res = {}
    for name, (c2, tf) in mistakes(c).items():
        W2 = tf(W) if tf else W
        diff = (lr.forward(c2, W2, tokens) - logits).abs().max().item()
        res[name] = float("%.3g" % (diff / scale))
    return res


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def make_tokens(f):
    """Fixed ids: includes 1 (bos), 2 (eos), 0 and vocab-1, a repeat, seeded random ids."""
    g = torch.Generator().manual_seed(f["seed"] + 500)
    V, n = f["vocab"], f["n_tokens"]
    base = [1, V - 1, 0, 2, 7]
    toks = (base + torch.randint(0, V, (n,), generator=g).tolist())[:n]
    toks[-1] = toks[1]
    return toks


def gate_stats(c, rec, L):
    af, nf, counts, mins, between = [], [], [], [], []
    for i in range(L):
        on = rec[i]["active"]
        counts.append(on.sum(dim=1).tolist())
        af.append(round(on.double().mean().item(), 6))
        nf.append(int((~on.any(dim=0)).sum().item()))
        if lr.activation(c) != "silu":
            mins.append(float("%.3g" % min(x.min().item() for x in margins(c, rec[i]))))
        if lr.activation(c) == "fatrelu":
            gt = rec[i]["gate"]
            between.append(int(((gt > 0) & (gt <= lr.threshold(c))).sum().item()))
    return af, nf, counts, mins, between


def read_safetensors(path):
    """The file as written, parsed independently of the writer: {name: float32 tensor}."""
    import numpy as np
    with open(path, "rb") as fh:
        b = fh.read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    W = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        s, e = v["data_offsets"]
        raw = b[8 + n + s:8 + n + e]
        if v["dtype"] == "F32":
            a = np.frombuffer(raw, "<f4").copy()
        elif v["dtype"] == "F16":
            a = np.frombuffer(raw, "<f2").astype(np.float32)
        else:   # BF16: the upper half of a float32
            a = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        W[name] = torch.from_numpy(a.reshape(v["shape"]))
    return W


def float32_readback(d):
    """Read config.json, model.safetensors and logits.f32 back from folder d, run the reference
    in float32 (what a C forward computes) and return max |logit diff| / max |logit|; assert
    the float32 active counts equal the float64 ones, as the margin promises."""
    with open(os.path.join(d, "config.json")) as fh:
        c = json.load(fh)
    with open(os.path.join(d, "reference.json")) as fh:
        r = json.load(fh)
    W = read_safetensors(os.path.join(d, "model.safetensors"))
    ref = torch.from_numpy(__import__("numpy").fromfile(os.path.join(d, "logits.f32"), "<f4")
                           .reshape(r["logits_shape"]))
    rec = {}
    out = lr.forward(c, W, r["tokens"], record=rec, dtype=torch.float32)
    assert out.dtype == torch.float32
    counts = [rec[i]["active"].sum(dim=1).tolist() for i in range(len(rec))]
    assert counts == r["active_counts"], ("float32 active set differs", d)
    return (out.double() - ref.double()).abs().max().item() / ref.abs().max().item()


def build(f, out_root):
    written = []
    d = os.path.join(out_root, f["name"])
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    c = config_dict(f)
    # the reference reads the config exactly as written (defaults for missing keys included)
    c = json.loads(json.dumps(c))
    tokens = make_tokens(f)
    master = make_master_weights(f, c)
    if f["targets"]:
        master = calibrate(f, c, master, tokens)
    nudged = ensure_margin(f, c, master, tokens)

    stored = stored_of(f, master)
    assert {k: list(v.shape) for k, v in stored.items()} == lr.tensor_shapes(c)
    W, rec, logits = run(f, c, master, tokens)
    decode_err = lr.check_decode(c, W, tokens, logits)
    lr.check_sparse_down(c, W, rec)
    slow_err = (lr.slow_forward(c, W, tokens) - logits).abs().max().item()
    assert slow_err < 1e-10, ("slow forward disagrees", f["name"], slow_err)

    sens = sensitivity(c, W, tokens, logits)
    af, nf, counts, mins, between = gate_stats(c, rec, f["layers"])
    logits32 = logits.to(torch.float32)
    top2 = torch.topk(logits, 2, dim=-1).values
    min_gap = (top2[:, 0] - top2[:, 1]).min().item()

    mf.write_file(os.path.join(d, "logits.f32"), mf.tensor_bytes(logits32), written)
    names = sorted(stored)
    blob, _ = mf.safetensors_bytes([(n, stored[n]) for n in names])
    mf.write_file(os.path.join(d, "model.safetensors"), blob, written)
    mf.write_file(os.path.join(d, "config.json"),
                  json.dumps(config_dict(f), indent=2, sort_keys=True) + "\n", written)

    n_sub = 0
    if f["dtype"] == "F16":
        n_sub = sum(int(((v != 0) & (v.abs() < 2.0 ** -14)).sum().item()) for v in stored.values())
    ref = {
        "tokens": tokens,
        "n_tokens": len(tokens),
        "vocab_size": f["vocab"],
        "logits_file": "logits.f32",
        "logits_shape": [len(tokens), f["vocab"]],
        "activation": lr.activation(c),
        "activation_threshold": lr.threshold(c),
        "active_fraction": af,
        "never_fired": nf,
        "active_counts": counts,
        "min_gate_margin": mins if mins else None,
        "logit_scale": float(logits32.abs().max().item()),
        "argmax": torch.argmax(logits, dim=-1).tolist(),
        "min_top2_gap": float("%.3g" % min_gap),
        "gate_weights_nudged": nudged,
        "seed": f["seed"],
        "decode_check": True,
        "decode_max_abs_diff": float("%.3g" % decode_err),
        "slow_forward_max_abs_diff": float("%.3g" % slow_err),
        "storage_dtype": f["dtype"],
        "mistake_sensitivity": sens,
        "description": f["note"],
    }
    if between:
        ref["gate_in_0_threshold"] = between
    if n_sub:
        ref["f16_subnormals"] = n_sub
    mf.write_file(os.path.join(d, "reference.json"), json.dumps(ref, indent=1) + "\n", written)
    ref["float32_readback"] = float32_readback(d)
    assert ref["float32_readback"] < 1e-5, (f["name"], ref["float32_readback"])
    return written, ref


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(mf.repo_root(), "tests", "data"),
                    help="output directory (default: tests/data in the repo)")
    ap.add_argument("--only", action="append", help="generate only this fixture (repeatable)")
    args = ap.parse_args()

    torch.set_num_threads(1)  # fixed summation order => identical bytes on every run
    torch.manual_seed(0)
    lr.self_test()
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for f in FIXTURES:
        if args.only and f["name"] not in args.only:
            continue
        written, ref = build(f, args.out)
        sz = sum(s for _, s in written)
        total += sz
        c = config_dict(f)
        print("%s: %s %s hidden %d heads %d/%d (head_dim %d) ffn %d vocab %d %s tied %s"
              % (f["name"], f["arch"], ref["activation"], f["hidden"], f["heads"], f["kv"],
                 lr.head_dim(c), f["ffn"], f["vocab"], f["dtype"], f["tied"]))
        print("  tokens %d  logit_scale %.3f  min top2 gap %.3g  active_fraction %s  "
              "never_fired %s  min margin %s  nudged %d  decode %.2g  slow %.2g%s%s"
              % (ref["n_tokens"], ref["logit_scale"], ref["min_top2_gap"],
                 ref["active_fraction"], ref["never_fired"], ref["min_gate_margin"],
                 ref["gate_weights_nudged"], ref["decode_max_abs_diff"],
                 ref["slow_forward_max_abs_diff"],
                 ("  in (0,thr] %s" % ref["gate_in_0_threshold"])
                 if "gate_in_0_threshold" in ref else "",
                 ("  f16 subnormals %d" % ref["f16_subnormals"])
                 if "f16_subnormals" in ref else ""))
        print("  mistakes (max |diff| / scale): %s" % ref["mistake_sensitivity"])
        print("  float32 forward of the files read back: max |diff| / scale %.2g, same active "
              "counts" % ref["float32_readback"])
        for path, s in written:
            print("  wrote %-50s %8d bytes" % (os.path.relpath(path), s))
    print("total %d bytes" % total)


if __name__ == "__main__":
    main()
