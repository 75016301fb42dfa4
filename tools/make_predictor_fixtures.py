#!/usr/bin/python3
"""Generate tests/data/predictor/llama-*: activation predictors on the tiny LLaMA fixtures, in
PowerInfer's GGUF form (magic PWRI, blk.N.fc1 / fc2) and as lazyneuron's predictor.safetensors
sidecar, with the logits an independent float64 forward (tools/llama_reference.py) gives with
the predictor applied.

    /usr/bin/python3 tools/make_predictor_fixtures.py [--out tests/data/predictor]

Why these shapes: a predictor's rank is a short vector (PowerInfer's vary by layer), and a rank
that is not a multiple of a kernel's vector width once made the second product read past the
hidden buffer (issue 24). So ranks 1, 7, 16 and 33, and a file whose two layers differ (7 and
33), on a ReLU model (llama-mqa: ReluLLaMA's relu(gate) * up) and a dReLU one (llama-drelu:
Bamboo's relu(gate) * relu(up)).

  kind "signed":  w1 ~ N(0, 1/d), w2 ~ N(0, 1): 20-80 % of the neurons predicted in every layer
                  (a seed whose rank-1 hidden unit never fires would pass everything).
  kind "allpass": |w2|: every score is >= 0 = the threshold, so every neuron is predicted and
                  the logits must equal the model's own (the case issue 24 found wrong).

PWRI files: the model converted as llama.cpp would (lzn_convert --stock, F16 matrices as
PowerInfer ships them), fc1 [r][d_model] and fc2 [d_ff][r] in F16, no biases, ReLU between,
reading the residual stream before the FFN norm, powerinfer.sparse_threshold 0. The reference
runs on the stored F16 values widened. Sidecars (F32, read beside the Hugging Face folder
through lzn_model_params.predictor_path) read the normalised MLP input and carry b1 / b2.

Every pre-activation of the predictor's hidden layer and every score lies at least MARGIN
from its switch point, and every predicted gate (and dReLU up) at least MARGIN from zero, so a
float32 forward selects exactly the reference's neurons; seeds are tried in order until one
gives that. Deterministic: regenerating writes identical bytes.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_write  # noqa: E402
import llama_reference as lr  # noqa: E402
import lzn_convert  # noqa: E402
import make_fixtures as mf  # noqa: E402
import train_predictor as tp  # noqa: E402  (the sidecar's safetensors writer)

MARGIN = 1e-3
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")

# name, base fixture, format, rank per layer, kind
VARIANTS = [
    ("llama-relu-pwri-r1", "llama-mqa", "pwri", [1, 1], "signed"),
    ("llama-relu-pwri-r7", "llama-mqa", "pwri", [7, 7], "signed"),
    ("llama-relu-pwri-r16", "llama-mqa", "pwri", [16, 16], "signed"),
    ("llama-relu-pwri-r16-allpass", "llama-mqa", "pwri", [16, 16], "allpass"),
    ("llama-relu-pwri-r33", "llama-mqa", "pwri", [33, 33], "signed"),
    ("llama-relu-pwri-r7-33", "llama-mqa", "pwri", [7, 33], "signed"),
    ("llama-bamboo-pwri-r1", "llama-drelu", "pwri", [1, 1], "signed"),
    ("llama-bamboo-pwri-r7", "llama-drelu", "pwri", [7, 7], "signed"),
    ("llama-bamboo-pwri-r16", "llama-drelu", "pwri", [16, 16], "signed"),
    ("llama-bamboo-pwri-r16-allpass", "llama-drelu", "pwri", [16, 16], "allpass"),
    ("llama-bamboo-pwri-r33", "llama-drelu", "pwri", [33, 33], "signed"),
    ("llama-bamboo-pwri-r7-33", "llama-drelu", "pwri", [7, 33], "signed"),
    ("llama-relu-sidecar-r7-33", "llama-mqa", "sidecar", [7, 33], "signed"),
    ("llama-relu-sidecar-r16-allpass", "llama-mqa", "sidecar", [16, 16], "allpass"),
    ("llama-bamboo-sidecar-r1-16", "llama-drelu", "sidecar", [1, 16], "signed"),
]


def base_folder(base):
    return os.path.join(DATA, base)


def read_base(base):
    folder = base_folder(base)
    config = json.load(open(os.path.join(folder, "config.json")))
    ref = json.load(open(os.path.join(folder, "reference.json")))
    tensors = {k: torch.from_numpy(lzn_convert.as_f32(v).copy()) for k, v in lzn_convert.read_folder(folder).items()}
    return config, ref["tokens"], tensors


def as_stored(tensors, fmt):
    """float64 weights as the file holds them: PWRI matrices rounded to F16 (norms stay F32)."""
    out = {}
    for k, v in tensors.items():
        if fmt == "pwri" and v.dim() == 2:
            v = v.to(torch.float16)
        out[k] = v.to(torch.float64)
    return out


def make_predictor(rng, c, ranks, kind, fmt):
    d, f = c["hidden_size"], c["intermediate_size"]
    layers = {}
    for i, r in enumerate(ranks):
        w1 = torch.from_numpy(rng.standard_normal((r, d)) / np.sqrt(d))
        w2 = torch.from_numpy(rng.standard_normal((f, r)))
        if kind == "allpass":
            w2 = w2.abs()
        p = {"w1": w1, "w2": w2, "b1": None, "b2": None}
        if fmt == "sidecar" and kind == "signed":
            p["b1"] = torch.from_numpy(rng.standard_normal(r) * 0.1)
            p["b2"] = torch.from_numpy(rng.standard_normal(f) * 0.1)
        if fmt == "pwri":  # stored as F16: the reference uses what the file holds
            p = {k: (v.to(torch.float16).to(torch.float64) if v is not None else None) for k, v in p.items()}
        layers[i] = p
    return layers


class Scorer:
    """The predictor as lazyneuron runs it, recording margins and predicted counts."""

    def __init__(self, preds, fmt):
        self.preds, self.fmt = preds, fmt
        self.min_margin = float("inf")
        self.counts = {}

    def __call__(self, i, x, h):
        p = self.preds[i]
        inp = x if self.fmt == "pwri" else h
        pre = inp @ p["w1"].T + (p["b1"] if p["b1"] is not None else 0)
        hidden = torch.relu(pre)
        s = hidden @ p["w2"].T + (p["b2"] if p["b2"] is not None else 0)
        self.min_margin = min(self.min_margin, pre.abs().min().item())
        # A score exactly 0 from an all-zero hidden layer (no bias) is exact in fp32 too.
        exact_zero = (hidden == 0).all(dim=1, keepdim=True) & (p["b2"] is None)
        margin = torch.where(exact_zero.expand_as(s), torch.full_like(s, float("inf")), s.abs())
        self.min_margin = min(self.min_margin, margin.min().item())
        mask = s >= 0.0
        self.counts[i] = mask.sum(dim=1).tolist()
        return mask


def gate_margin(c, rec, masks):
    """The smallest |gate| (and dReLU |up|) among predicted neurons: far from the switch."""
    worst = float("inf")
    for i, r in rec.items():
        g = r["gate"][masks[i]]
        if g.numel():
            worst = min(worst, g.abs().min().item())
        if lr.activation(c) == "drelu":
            u = r["up"][masks[i] & (r["gate"] > 0)]
            if u.numel():
                worst = min(worst, u.abs().min().item())
    return worst


def run(c, W, tokens, preds, fmt):
    scorer = Scorer(preds, fmt)
    masks = {}

    def predictor(i, x, h):
        m = scorer(i, x, h)
        masks[i] = m
        return m

    rec = {}
    logits = lr.forward(c, W, tokens, record=rec, predictor=predictor)
    counts = dict(scorer.counts)
    # Token by token with the cache gives the same (the predictor is per token).
    cache, outs = lr.new_cache(c), []
    for t in tokens:
        outs.append(lr.forward(c, W, [t], cache=cache, predictor=lambda i, x, h: scorer(i, x, h)))
    assert (torch.cat(outs) - logits).abs().max().item() < 1e-10
    scorer.counts = counts
    return logits, rec, masks, scorer


def pwri_file(base, out, preds):
    """The base folder as llama.cpp's converter writes it (F16), with PowerInfer's magic and
    predictor tensors."""
    captured = {}
    real = lzn_convert.write_gguf

    def capture(path, meta, tensors, alignment=32, magic=b"GGUF"):
        captured.update(meta=dict(meta), tensors=dict(tensors), alignment=alignment)

    lzn_convert.write_gguf = capture
    try:
        lzn_convert.convert(base_folder(base), out, out_type="f16", stock=True)
    finally:
        lzn_convert.write_gguf = real
    meta, tensors = captured["meta"], captured["tensors"]
    meta["powerinfer.sparse_threshold"] = gguf_write.typed("f32", 0.0)
    for i, p in preds.items():
        tensors[f"blk.{i}.fc1.weight"] = p["w1"].numpy().astype(np.float16)
        tensors[f"blk.{i}.fc2.weight"] = p["w2"].numpy().astype(np.float16)
    real(out, meta, tensors, alignment=captured["alignment"], magic=b"PWRI")


def sidecar_file(out, preds):
    layers = {i: {k: (v.to(torch.float32) if v is not None else None) for k, v in p.items()}
              for i, p in preds.items()}
    tp.write_predictor(out, layers, {"lazyneuron.predictor.activation": "relu",
                                     "lazyneuron.predictor.threshold": "0"})


def build(name, base, fmt, ranks, kind, out_root):
    c, tokens, tensors = read_base(base)
    W = as_stored(tensors, fmt)
    for seed in range(1000, 1200):
        rng = np.random.default_rng(seed)
        preds = make_predictor(rng, c, ranks, kind, fmt)
        logits, rec, masks, scorer = run(c, W, tokens, preds, fmt)
        g = gate_margin(c, rec, masks)
        F, n = c["intermediate_size"], len(tokens)
        fractions = [sum(v) / (F * n) for v in scorer.counts.values()]
        real = kind == "allpass" or all(0.2 < x < 0.8 for x in fractions)  # signed: drops neurons
        if scorer.min_margin >= MARGIN and g >= MARGIN and real:
            break
    else:
        raise SystemExit(f"{name}: no seed gives margins >= {MARGIN}")
    if kind == "allpass":
        assert all(all(n == c["intermediate_size"] for n in v) for v in scorer.counts.values())
    d = os.path.join(out_root, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    written = []
    mf.write_file(os.path.join(d, "logits.f32"), mf.tensor_bytes(logits.to(torch.float32)), written)
    if fmt == "pwri":
        pwri_file(base, os.path.join(d, "model.gguf"), preds)
        dense = lr.forward(c, W, tokens)  # the file's own model, for DENSE
        mf.write_file(os.path.join(d, "logits_dense.f32"), mf.tensor_bytes(dense.to(torch.float32)), written)
    else:
        sidecar_file(os.path.join(d, "predictor.safetensors"), preds)
    F = c["intermediate_size"]
    fired = {i: r["active"] for i, r in rec.items()}
    ref = {
        "tokens": tokens,
        "n_tokens": len(tokens),
        "vocab_size": c["vocab_size"],
        "format": fmt,
        "kind": kind,
        "ranks": ranks,
        "model": "model.gguf" if fmt == "pwri" else "../../" + base,
        "predictor": None if fmt == "pwri" else "predictor.safetensors",
        "logits_dense": "logits_dense.f32" if fmt == "pwri" else "../../" + base + "/logits.f32",
        "active_fraction": [float(fired[i].double().mean().item()) for i in range(len(ranks))],
        "never_fired": [int((~fired[i].any(dim=0)).sum().item()) for i in range(len(ranks))],
        "predicted_counts": [scorer.counts[i] for i in range(len(ranks))],
        "predicted_fraction": [sum(scorer.counts[i]) / (F * len(tokens)) for i in range(len(ranks))],
        "min_margin": float("%.3g" % min(scorer.min_margin, gate_margin(c, rec, masks))),
        "seed": seed,
    }
    mf.write_file(os.path.join(d, "reference.json"), json.dumps(ref, indent=1) + "\n", written)
    return written


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(DATA, "predictor"))
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    for v in VARIANTS:
        for path, size in build(*v, a.out):
            print(f"{size:8d}  {os.path.relpath(path)}")


if __name__ == "__main__":
    main(sys.argv[1:])
