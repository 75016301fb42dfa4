#!/usr/bin/python3
"""Train activation predictors for an OPT ReLU model or a gated-ReLU LLaMA and write
predictor.safetensors.

Run with Debian's interpreter (it has torch 1.13), on one core:

    nice -n 19 /usr/bin/python3 tools/train/train_predictor.py [--model models/tiny-opt] [--svd]
    nice -n 19 /usr/bin/python3 tools/train/train_predictor.py --model models/tiny-llama
    /usr/bin/python3 tools/train/train_predictor.py --make-fixture    # tests/data/predictor/opt-preln

A predictor guesses, from the MLP input x (OPT: the output of the layer's final_layer_norm, the
vector fc1 reads), which fc1 neurons fire (relu(fc1 x + b1) > 0), so that only their fc1 rows need
to be computed.  For a gated MLP down(relu(gate(x)) * up(x)) (LLaMA: x is the output of
post_attention_layernorm) it guesses which neurons have gate(x) > 0: the runtime computes only
their gate rows, gives every other neuron gate 0, and reads up and down rows of the neurons
that then fire (tools/train/predictor_llama.py has that architecture and the C test's data).  Neuron
i is predicted active when s_i >= threshold, with

    activation "relu":  s = w2 relu(w1 x + b1) + b2     (PowerInfer's form; the trained predictor)
    activation "none":  s = w2 (w1 x + b1) + b2         (Deja Vu's low-rank form; --svd)

File format (beside the model's config.json; read by the C runtime):
    layers.N.predictor.w1         F32 [r_N][d_model]
    layers.N.predictor.w2         F32 [d_ff][r_N]
    layers.N.predictor.b1         F32 [r_N]      (optional)
    layers.N.predictor.b2         F32 [d_ff]     (optional)
    layers.N.predictor.threshold  F32 [1]        (optional, overrides the global threshold)
    __metadata__: lazyneuron.predictor.activation "relu"|"none", .threshold (global, text),
                  .method "trained"|"svd", .layers (count of layers with a predictor), and
                  informational keys (recall target, ranks as JSON, ...).
A layer without tensors runs without a predictor. The runtime reads the predictor whole for
every token: lzn_model_params.predictor_type (lzn-run / lzn-server --predictor-type q8_0)
converts these F32 matrices at load, a quarter of the bytes in Q8_0.

What the default (trained) mode does, deterministically (fixed seeds, one thread):
  1. The corpus and its split are the models' own (tools/train/tiny_training.py, seed 1234, 5 % of
     the fortunes held out).  Only the TRAINING split is used to fit anything: its fortunes are split again
     (seeded) into a fit part (90 %) and a calibration part (10 %).
  2. The float32 torch model runs over --bytes bytes of random fit windows and over all of the
     calibration part, in windows of the model's training length (tiny-opt 256 bytes,
     tiny-llama 128), and records each layer's MLP input x; "fired" is recomputed from x.
  3. Per layer and per rank in --ranks: a predictor trained with Adam on weighted BCE
     (pos_weight = (1-p)/p, p = the layer's firing rate), the epoch kept that predicts the
     smallest set at the target recall on the calibration part (early stopping with patience).
     The threshold is calibrated on the calibration part: the largest value at which at least
     --recall of the fired (token, neuron) pairs are predicted.
  4. The rank per layer: the one with the lowest up-projection cost per token, predictor
     r*(d_model + d_ff) plus predicted fc1 (gate) rows |S|*d_model (ties: smaller rank).
     Going up the list stops once the cost rises.
--svd instead takes w1 = S_r V_r^T, w2 = U_r (top-r SVD of fc1.weight or gate_proj.weight),
b2 = fc1.bias (a gate has none): s approximates fc1 x + b1 (activation "none"); the threshold
is calibrated the same way.

Finally it evaluates on the HELD-OUT split with the torch model: per layer recall, predicted-set
size, and bits per byte with the predictor applied (neurons outside the predicted set forced to
0) against without, and writes --card (PREDICTOR.md), with other runs' numbers (--card-json
of those runs) given by --include.
"""

import argparse
import json
import math
import os
import shutil
import struct
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True   # write nothing into tools/
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "fixtures")]  # tools/fixtures: make_fixtures
import make_fixtures as mf  # noqa: E402  (tensor_bytes, float64 OPT reference, fixture table)
import tiny_training  # noqa: E402  (corpus, split, windows)
import train_tiny  # noqa: E402  (TinyOPT)

PREFIX = "layers.%d.predictor."
FIT_FRAC = 0.9            # of the training fortunes; the rest calibrates / selects
SIZE_TOL = 0.10           # --select size: within 10 % of the smallest predicted set


# --------------------------------------------------------------------------------------------
# safetensors I/O
# --------------------------------------------------------------------------------------------


def read_safetensors(path):
    """{name: float32 torch tensor} and the metadata dict of a safetensors file (F32 only)."""
    with open(path, "rb") as fh:
        blob = fh.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", (path, name, e["dtype"])
        b0, b1 = e["data_offsets"]
        a = np.frombuffer(blob, dtype="<f4", count=(b1 - b0) // 4, offset=base + b0)
        out[name] = torch.from_numpy(a.copy()).reshape(e["shape"])
    return out, meta


def predictor_bytes(tensors, metadata):
    """safetensors bytes: tensors (name -> F32 tensor) sorted by name, data in header order,
    header padded with spaces to a multiple of 8, string metadata."""
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, off = [], 0
    for name in sorted(tensors):
        t = tensors[name].to(torch.float32).contiguous()
        b = mf.tensor_bytes(t)
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)
    return struct.pack("<Q", len(hj)) + hj + b"".join(blobs)


def write_predictor(path, layers, metadata):
    """layers: {N: dict(w1, w2, b1?, b2?, threshold?)}."""
    tensors = {}
    for i, p in layers.items():
        for k, v in p.items():
            if v is not None:
                tensors[PREFIX % i + k] = v.reshape(1) if k == "threshold" else v
    with open(path, "wb") as fh:
        fh.write(predictor_bytes(tensors, metadata))
    return os.path.getsize(path)


def load_predictor(path):
    """Back to {N: dict(...)} and the metadata (for evaluation of a written file)."""
    t, meta = read_safetensors(path)
    layers = {}
    for name, v in t.items():
        parts = name.split(".")
        assert parts[0] == "layers" and parts[2] == "predictor", name
        layers.setdefault(int(parts[1]), {})[parts[3]] = v
    return layers, meta


# --------------------------------------------------------------------------------------------
# Model: what the rest of the tool needs of an architecture
# --------------------------------------------------------------------------------------------
#
# An architecture object has: model (the float32 torch module, eval mode), d_model, ffn,
# n_layers, window (bytes per evaluation window: the model's training window), the card's
# words (name, script, proj, intro, fired_rule), and
#   proj(i)                      -> (weight [d_ff][d], bias or None): what the predictor replaces
#   mlp_inputs(ids)              -> per layer x [B, T, d]: the vector proj(i) reads
#   forward_with_predictor(ids, preds, act, stats) -> logits, the predicted set enforced
# The OPT one is below; tools/train/predictor_llama.py has the LLaMA one.


class OptModel:
    """tiny-opt (train_tiny.TinyOPT): x is final_layer_norm's output, fc1 the projection."""
    window = 256
    proj_name = "fc1"
    script = "tools/train/train_tiny.py"
    fired_rule = "relu(fc1 x + b1) > 0"
    intro = ("the output of the layer's\n`final_layer_norm`, the vector fc1 reads) which fc1 "
             "neurons fire, so the runtime computes only\nthose fc1 rows.")
    svd_start = "w1 = S_r V_r^T, w2 = U_r, b2 = fc1 bias"

    def __init__(self, model_dir, c):
        assert c["do_layer_norm_before"] and c["activation_function"] == "relu"
        a = SimpleNamespace(d_model=c["hidden_size"], heads=c["num_attention_heads"],
                            ffn=c["ffn_dim"], layers=c["num_hidden_layers"],
                            max_pos=c["max_position_embeddings"], init_std=c.get("init_std", 0.02))
        assert c["vocab_size"] == tiny_training.VOCAB
        model = train_tiny.TinyOPT(a)
        sd, _ = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        model.load_state_dict(sd, strict=True)
        model.eval()
        self.name = os.path.basename(os.path.normpath(model_dir))
        self.model, self.d_model, self.ffn, self.n_layers = model, a.d_model, a.ffn, a.layers
        self.layers = model.model.decoder.layers

    def proj(self, i):
        return self.layers[i].fc1.weight, self.layers[i].fc1.bias

    def card_notes(self, a, res, others):
        return OPT_NOTES

    def mlp_inputs(self, ids):
        """Run the model; return the per-layer MLP inputs x [B, T, d] (final_layer_norm
        outputs)."""
        return hooked_outputs(self.model, [layer.final_layer_norm for layer in self.layers], ids)

    @torch.no_grad()
    def forward_with_predictor(self, ids, preds, act, stats=None):
        """TinyOPT.forward with, in each layer that has a predictor, the fc1 outputs of neurons
        outside the predicted set forced to 0.  stats (optional): see count_set."""
        model = self.model
        dec = model.model.decoder
        T = ids.shape[1]
        pos = torch.arange(T) + mf.POS_OFFSET
        x = dec.embed_tokens(ids) + dec.embed_positions(pos)[None]
        for i, layer in enumerate(dec.layers):
            x = x + layer.self_attn(layer.self_attn_layer_norm(x), model.mask)
            xn = layer.final_layer_norm(x)
            pre = layer.fc1(xn)
            h = torch.relu(pre)
            p = preds.get(i)
            if p is not None:
                sel = scores(p, act, xn) >= p["threshold"]
                h = h * sel
                count_set(stats, i, sel, pre > 0)
            x = x + layer.fc2(h)
        x = dec.final_layer_norm(x)
        return F.linear(x, dec.embed_tokens.weight)


def load_model(model_dir):
    """The architecture object of a model folder (OPT or LLaMA, by its config.json)."""
    with open(os.path.join(model_dir, "config.json")) as fh:
        c = json.load(fh)
    if c["model_type"] == "opt":
        return OptModel(model_dir, c)
    if c["model_type"] == "llama":
        import predictor_llama   # only here: it imports the LLaMA trainer
        return predictor_llama.LlamaModel(model_dir, c)
    raise SystemExit("%s: model_type %r: only opt and llama" % (model_dir, c["model_type"]))


def hooked_outputs(model, modules, ids):
    """Run model(ids); the outputs of modules (one per layer), detached."""
    xs = []
    hooks = [m.register_forward_hook(lambda m, i, o: xs.append(o.detach())) for m in modules]
    try:
        with torch.no_grad():
            model(ids)
    finally:
        for h in hooks:
            h.remove()
    return xs


def fired(proj, x):
    """Neurons that fire for inputs x: proj x (+ bias) > 0 (relu, and the gate of a gated
    relu MLP)."""
    return F.linear(x, proj[0], proj[1]) > 0


def scores(p, act, x):
    """Predictor scores s for inputs x [..., d] (float32 or float64 like p's tensors)."""
    h = F.linear(x, p["w1"], p.get("b1"))
    if act == "relu":
        h = torch.relu(h)
    return F.linear(h, p["w2"], p.get("b2"))


def count_set(stats, i, sel, on):
    """Adds to stats[i] (when stats is not None) the predicted, fired (of the layer's actual
    input), fired-and-predicted counts and the tokens."""
    if stats is None:
        return
    s = stats.setdefault(i, dict(pred=0, fired=0, hit=0, tokens=0))
    s["pred"] += int(sel.sum())
    s["fired"] += int(on.sum())
    s["hit"] += int((sel & on).sum())
    s["tokens"] += on.numel() // on.shape[-1]


@torch.no_grad()
def heldout_bpb(arch, windows, preds, act, stats=None, bs=16):
    tot, n = 0.0, 0
    for i in range(0, windows.shape[0], bs):
        w = windows[i:i + bs]
        logits = arch.forward_with_predictor(w[:, :-1], preds, act, stats)
        tot += F.cross_entropy(logits.reshape(-1, tiny_training.VOCAB), w[:, 1:].reshape(-1),
                               reduction="sum").item()
        n += w[:, 1:].numel()
    return tot / n / math.log(2)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def corpus(seed):
    """The models' split (tiny_training); the training fortunes split again into fit and
    calibration parts."""
    fortunes = tiny_training.load_fortunes()
    tr, va = tiny_training.split_corpus(fortunes, 1234)      # the model's own split, fixed
    g = torch.Generator().manual_seed(seed + 17)
    perm = torch.randperm(len(tr), generator=g).tolist()
    n_fit = int(round(FIT_FRAC * len(tr)))
    fit = [tr[i] for i in sorted(perm[:n_fit])]
    cal = [tr[i] for i in sorted(perm[n_fit:])]
    return dict(fit=tiny_training.to_stream(fit), cal=tiny_training.to_stream(cal),
                val=tiny_training.to_stream(va), n=(len(fit), len(cal), len(va)))


def random_windows(stream, nbytes, seed, window):
    n = max(1, nbytes // window)
    g = torch.Generator().manual_seed(seed)
    off = torch.randint(0, stream.numel() - window - 1, (n,), generator=g)
    return stream[off[:, None] + torch.arange(window + 1)]


def record(arch, windows, bs=16):
    """Per layer MLP inputs, flattened to [N, d] float32."""
    per = None
    for i in range(0, windows.shape[0], bs):
        xs = arch.mlp_inputs(windows[i:i + bs, :-1])
        xs = [x.reshape(-1, x.shape[-1]) for x in xs]
        per = [[x] for x in xs] if per is None else [a + [x] for a, x in zip(per, xs)]
    return [torch.cat(a) for a in per]


# --------------------------------------------------------------------------------------------
# Calibration and training
# --------------------------------------------------------------------------------------------


def calibrate(s, on, target):
    """Largest threshold t with recall(s >= t) >= target over the fired pairs of on."""
    pos = s[on]
    if pos.numel() == 0:
        return float(s.max()) + 1.0
    k = int(math.floor((1.0 - target) * pos.numel()))   # fired pairs we may miss
    srt = torch.sort(pos).values
    return float(srt[min(k, srt.numel() - 1)])


def set_stats(s, on, thr):
    sel = s >= thr
    nf = int(on.sum())
    hit = int((sel & on).sum())
    return dict(recall=hit / max(1, nf), size=float(sel.float().mean()),
                true=float(on.float().mean()), rel=int(sel.sum()) / max(1, nf))


class Predictor(nn.Module):
    def __init__(self, d, r, f, act):
        super().__init__()
        self.l1, self.l2, self.act = nn.Linear(d, r), nn.Linear(r, f), act

    def forward(self, x):
        h = self.l1(x)
        return self.l2(torch.relu(h) if self.act == "relu" else h)

    def export(self):
        return dict(w1=self.l1.weight.detach().clone(), b1=self.l1.bias.detach().clone(),
                    w2=self.l2.weight.detach().clone(), b2=self.l2.bias.detach().clone())


def train_layer(proj, xf, xc, r, a, log):
    """Fit one predictor of rank r in place of proj = (weight, bias); keep the epoch with the
    smallest calibrated set."""
    torch.manual_seed(a.seed + r)
    d, f = xf.shape[1], proj[0].shape[0]
    with torch.no_grad():
        on_c = fired(proj, xc)
        rate = sum(fired(proj, xf[j:j + 65536]).float().sum(dim=0)
                   for j in range(0, xf.shape[0], 65536)) / xf.shape[0]
        if a.pos_weight == "neuron":   # per-neuron rates, clamped so dead neurons stay finite
            p = rate.clamp(min=1e-3, max=0.5)
        else:
            p = rate.mean().clamp(min=1e-4)
    pw = (1 - p) / p
    net = Predictor(d, r, f, a.act)
    if a.init == "svd":   # start from the SVD predictor: s = W x + b restricted to rank r
        sv, _ = svd_layer(proj, xc[:1024], r, a)
        with torch.no_grad():
            net.l1.weight.copy_(sv["w1"])
            net.l1.bias.zero_()
            net.l2.weight.copy_(sv["w2"])
            if "b2" in sv:
                net.l2.bias.copy_(sv["b2"])
            else:
                net.l2.bias.zero_()
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    g = torch.Generator().manual_seed(a.seed + 1000 + r)
    best, best_ep, bad = None, -1, 0
    for ep in range(a.epochs):
        t0 = time.time()
        perm = torch.randperm(xf.shape[0], generator=g)
        lr = a.lr * (0.5 ** (ep // 4))
        for grp in opt.param_groups:
            grp["lr"] = lr
        for j in range(0, xf.shape[0], a.batch):
            xb = xf[perm[j:j + a.batch]]
            with torch.no_grad():
                yb = fired(proj, xb).float()
            loss = F.binary_cross_entropy_with_logits(net(xb), yb, pos_weight=pw)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            s = net(xc)
        thr = calibrate(s, on_c, a.cal_recall)
        st = set_stats(s, on_c, thr)
        log("    rank %3d epoch %2d  loss %.4f  cal: thr %+.3f size %.4f (x%.2f true) recall %.4f"
            "  %.0fs" % (r, ep, loss.item(), thr, st["size"], st["rel"], st["recall"],
                         time.time() - t0))
        if best is None or st["size"] < best[1]["size"] - 1e-5:
            best, best_ep, bad = (dict(net.export(), threshold=torch.tensor([thr])), st), ep, 0
        else:
            bad += 1
            if bad >= a.patience:
                break
    return best[0], dict(best[1], epoch=best_ep)


def svd_layer(proj, xc, r, a):
    W = proj[0].detach().double()
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    p = dict(w1=(S[:r, None] * Vh[:r]).float(), w2=U[:, :r].contiguous().float())
    if proj[1] is not None:   # a LLaMA gate has no bias: then no b2 either
        p["b2"] = proj[1].detach().clone()
    with torch.no_grad():
        s = scores(p, "none", xc)
        on_c = fired(proj, xc)
    thr = calibrate(s, on_c, a.cal_recall)
    p["threshold"] = torch.tensor([thr])
    return p, set_stats(s, on_c, thr)


def cost(r, size, d, f):
    """Up-projection (fc1, or a gated MLP's gate) MACs per token relative to the dense
    projection: predictor plus predicted rows."""
    return (r * (d + f) + size * f * d) / (f * d)


def build(arch, a, data, log):
    ranks = [int(x) for x in a.ranks.split(",")]
    t0 = time.time()
    xf = record(arch, random_windows(data["fit"], a.bytes, a.seed + 1, arch.window))
    xc = record(arch, tiny_training.val_windows(data["cal"], arch.window))   # all of it
    log("recorded %d fit and %d calibration tokens per layer (%.0fs)"
        % (xf[0].shape[0], xc[0].shape[0], time.time() - t0))
    layers, info = {}, {}
    d, f = arch.d_model, a.ffn
    for i in range(arch.n_layers):
        proj = arch.proj(i)
        tried = []
        for r in ranks:
            if a.svd:
                p, st = svd_layer(proj, xc[i], r, a)
            else:
                p, st = train_layer(proj, xf[i], xc[i], r, a, log)
            st = dict(st, rank=r, cost=cost(r, st["size"], d, f), threshold=float(p["threshold"]))
            log("  layer %d rank %3d: cal thr %+.4f size %.4f (true %.4f, x%.2f) recall %.4f "
                "cost %.3f of dense %s" % (i, r, float(p["threshold"]), st["size"], st["true"],
                                           st["rel"], st["recall"], st["cost"], arch.proj_name))
            tried.append((p, st))
            if a.select == "cost" and len(tried) > 1 and st["cost"] > tried[-2][1]["cost"]:
                break
        if a.select == "cost":
            p, st = min(tried, key=lambda t: (round(t[1]["cost"], 4), t[1]["rank"]))
        else:   # the smallest rank whose set is within SIZE_TOL of the smallest set tried
            best = min(t[1]["size"] for t in tried)
            p, st = next(t for t in tried if t[1]["size"] <= (1 + SIZE_TOL) * best)
        layers[i] = p
        info[i] = dict(chosen=st, tried=[t[1] for t in tried])
        log("  layer %d: rank %d" % (i, st["rank"]))
    return layers, info


# --------------------------------------------------------------------------------------------
# Held-out evaluation
# --------------------------------------------------------------------------------------------


def evaluate(arch, preds, act, val_windows, a):
    """Per layer numbers on the held-out split: with dense inputs (the predictor alone) and as
    deployed (all predictors applied); bits per byte with and without."""
    L = arch.n_layers
    dense = {}
    for i in range(0, val_windows.shape[0], 16):
        xs = arch.mlp_inputs(val_windows[i:i + 16, :-1])
        for l, p in preds.items():
            x = xs[l].reshape(-1, xs[l].shape[-1])
            on = fired(arch.proj(l), x)
            sel = scores(p, act, x) >= p["threshold"]
            count_set(dense, l, sel, on)
    deployed = {}
    bpb_pred = heldout_bpb(arch, val_windows, preds, act, deployed)
    bpb_dense = heldout_bpb(arch, val_windows, {}, act)
    rows = {}
    for l in range(L):
        if l not in preds:
            continue
        r = {}
        for tag, s in (("dense", dense[l]), ("deployed", deployed[l])):
            r[tag] = dict(recall=s["hit"] / max(1, s["fired"]),
                          size=s["pred"] / (s["tokens"] * a.ffn),
                          true=s["fired"] / (s["tokens"] * a.ffn),
                          rel=s["pred"] / max(1, s["fired"]))
        rows[l] = r
    return dict(layers=rows, bpb_pred=bpb_pred, bpb_dense=bpb_dense)


def metadata(a, act, method, layers, info, extra=None):
    m = {
        "lazyneuron.predictor.activation": act,
        "lazyneuron.predictor.threshold": "0.0",
        "lazyneuron.predictor.method": method,
        "lazyneuron.predictor.layers": str(len(layers)),
        "lazyneuron.predictor.recall_target": repr(a.recall),
        "lazyneuron.predictor.calibrated_recall": repr(a.cal_recall),
        "lazyneuron.predictor.ranks": json.dumps({str(i): int(p["w1"].shape[0])
                                                  for i, p in layers.items()}),
        "lazyneuron.predictor.thresholds": json.dumps({str(i): float(p["threshold"])
                                                       for i, p in layers.items()}),
        "lazyneuron.predictor.tool": "tools/train/train_predictor.py",
    }
    m.update(extra or {})
    return m


# --------------------------------------------------------------------------------------------
# The card
# --------------------------------------------------------------------------------------------


def card_section(title, res, layers, info, act, method, cmd, arch):
    L = res["layers"]
    lines = ["## %s" % title, "",
             "Command: `%s`" % cmd, "",
             "Activation `%s`, method `%s`. Per layer on the **held-out split** (all %d-byte "
             "non-overlapping windows): *alone* = the predictor on the unmodified model's MLP "
             "inputs; *deployed* = every predictor applied, so later layers see the changed "
             "residual stream. Size = predicted neurons per token as a fraction of d_ff; "
             "× true = predicted set / true active set." % (act, method, arch.window), "",
             "| layer | rank | threshold | recall alone | recall deployed | predicted size | "
             "true active | × true | cal. recall | cal. size | up-proj. cost vs dense %s |"
             % arch.proj_name,
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    rec = []
    for l in sorted(L):
        r, ch = L[l], info[l]["chosen"] if info else None
        rec.append(r["dense"]["recall"])
        lines.append("| %d | %d | %+.4f | %.4f | %.4f | %.1f %% | %.1f %% | %.2f | %s | %s | %s |"
                     % (l, layers[l]["w1"].shape[0], float(layers[l]["threshold"]),
                        r["dense"]["recall"], r["deployed"]["recall"],
                        100 * r["deployed"]["size"], 100 * r["deployed"]["true"],
                        r["deployed"]["rel"],
                        "%.4f" % ch["recall"] if ch else "—",
                        "%.1f %%" % (100 * ch["size"]) if ch else "—",
                        "%.3f" % ch["cost"] if ch else "—"))
    d = 100 * (res["bpb_pred"] / res["bpb_dense"] - 1)
    lines += ["", "Mean recall over layers (alone): **%.4f**. Held-out bits per byte: "
              "**%.4f** with the predictor, %.4f without (%+.2f %%)."
              % (sum(rec) / len(rec), res["bpb_pred"], res["bpb_dense"], d), ""]
    if info:
        lines += ["Ranks tried (calibration part of the training split; the search stops "
                  "when the cost rises):", "",
                  "| layer | rank | cal. threshold | cal. size | × true | cost |",
                  "|---|---|---|---|---|---|"]
        for l in sorted(info):
            for t in info[l]["tried"]:
                lines.append("| %d | %d | %+.4f | %.1f %% | %.2f | %.3f |"
                             % (l, t["rank"], t["threshold"], 100 * t["size"], t["rel"],
                                t["cost"]))
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Test fixture: SVD rank 8 on layer 0 of tests/data/opt-preln, float64 reference
# --------------------------------------------------------------------------------------------

FX_RANK = 8
FX_RECALL = 0.9          # the fixture's calibration target (rank 8 of 60 is a coarse predictor)
FX_MARGIN = 1e-3         # |s - threshold| and |fc1 pre-activation| >= this: fp32 agrees exactly


def forward64(cfg, W, tokens, preds, dtype=torch.float64):
    """Float64 OPT forward (pre-LN, as mf.forward) with the predictor mask; no cache.
    Returns logits [n, V] and per layer dict(pre, score or None, sel or None).
    dtype float32 (with float32 W) is the check that a float32 runtime gets the same counts."""
    H, nh, L, p = cfg["hidden"], cfg["heads"], cfg["layers"], cfg["prefix"]
    assert cfg["pre_ln"] and not cfg["proj_dim"] and cfg["tied"]
    hd, n = H // nh, len(tokens)
    ids = torch.tensor(tokens)
    x = W[p + "decoder.embed_tokens.weight"][ids] + \
        W[p + "decoder.embed_positions.weight"][torch.arange(n) + mf.POS_OFFSET]
    causal = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    rec = []
    for i in range(L):
        nm = mf.layer_names(p, i)
        h = mf.layer_norm(x, W[nm["ln1_w"]], W[nm["ln1_b"]])
        q = (mf.linear(h, W[nm["q_w"]], W[nm["q_b"]]) * hd ** -0.5).view(n, nh, hd).transpose(0, 1)
        k = mf.linear(h, W[nm["k_w"]], W[nm["k_b"]]).view(n, nh, hd).transpose(0, 1)
        v = mf.linear(h, W[nm["v_w"]], W[nm["v_b"]]).view(n, nh, hd).transpose(0, 1)
        s = (q @ k.transpose(1, 2)).masked_fill(causal, float("-inf"))
        att = (torch.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(n, H)
        x = x + mf.linear(att, W[nm["o_w"]], W[nm["o_b"]])
        h = mf.layer_norm(x, W[nm["ln2_w"]], W[nm["ln2_b"]])
        pre = mf.linear(h, W[nm["fc1_w"]], W[nm["fc1_b"]])
        act = torch.relu(pre)
        r = dict(pre=pre, score=None, sel=None)
        if i in preds:
            pp = {k_: v_.to(dtype) for k_, v_ in preds[i].items()}
            r["score"] = scores(pp, "none", h)
            r["sel"] = r["score"] >= pp["threshold"]
            act = act * r["sel"]
        rec.append(r)
        x = x + mf.linear(act, W[nm["fc2_w"]], W[nm["fc2_b"]])
    x = mf.layer_norm(x, W[p + "decoder.final_layer_norm.weight"],
                      W[p + "decoder.final_layer_norm.bias"])
    return x @ W[p + "decoder.embed_tokens.weight"].T, rec


def make_fixture(a):
    root = mf.repo_root()
    src = os.path.join(root, "tests", "data", "opt-preln")
    out = os.path.join(root, "tests", "data", "predictor", "opt-preln")
    cfg = next(c for c in mf.FIXTURES if c["name"] == "opt-preln")
    stored, _ = read_safetensors(os.path.join(src, "model.safetensors"))
    W = mf.widen(stored)
    with open(os.path.join(src, "reference.json")) as fh:
        ref = json.load(fh)
    tokens = ref["tokens"]

    # The plain forward must reproduce the fixture's own reference.
    base, _ = forward64(cfg, W, tokens, {})
    want = torch.from_numpy(np.fromfile(os.path.join(src, "logits.f32"), dtype="<f4").copy())
    err = (base.float().reshape(-1) - want).abs().max().item()
    assert err < 1e-5, ("forward64 disagrees with tests/data/opt-preln", err)
    assert (base - mf.forward(cfg, W, tokens)).abs().max().item() < 1e-12

    # SVD rank 8 of layer 0's fc1; w1/w2/b2 rounded to F32 first, the reference uses those.
    nm = mf.layer_names(cfg["prefix"], 0)
    U, S, Vh = torch.linalg.svd(W[nm["fc1_w"]], full_matrices=False)
    p = dict(w1=(S[:FX_RANK, None] * Vh[:FX_RANK]).float(),
             w2=U[:, :FX_RANK].contiguous().float(), b2=stored[nm["fc1_b"]].clone())
    # Calibrate on 64 seeded random sequences (not the reference tokens), then move the
    # threshold into a gap so that no score of the reference tokens is within FX_MARGIN of it
    # and no fc1 pre-activation of either layer (with the mask applied) is within FX_MARGIN of 0.
    g = torch.Generator().manual_seed(cfg["seed"] + 900)
    ss, ons = [], []
    for _ in range(64):
        toks = torch.randint(0, cfg["vocab"], (cfg["n_tokens"],), generator=g).tolist()
        _, rec = forward64(cfg, W, toks, {0: dict(p, threshold=torch.tensor([0.0]))})
        ss.append(rec[0]["score"])
        ons.append(rec[0]["pre"] > 0)
    s_cal, on_cal = torch.cat(ss), torch.cat(ons)
    thr0 = calibrate(s_cal, on_cal, FX_RECALL)
    _, rec = forward64(cfg, W, tokens, {0: dict(p, threshold=torch.tensor([0.0]))})
    sref = torch.sort(rec[0]["score"].flatten()).values
    cands = []
    for j in range(sref.numel() - 1):
        lo, hi = sref[j].item(), sref[j + 1].item()
        if hi - lo >= 2 * FX_MARGIN + 1e-6:
            mid = float(torch.tensor((lo + hi) / 2).float())   # representable in F32
            if mid < thr0:
                continue
            cands.append(mid)
    cands.sort(key=lambda t: abs(t - thr0))
    for thr in cands:
        pt = dict(p, threshold=torch.tensor([thr], dtype=torch.float32))
        logits, rec = forward64(cfg, W, tokens, {0: pt})
        m_pre = min(r["pre"].abs().min().item() for r in rec)
        m_s = (rec[0]["score"] - thr).abs().min().item()
        if m_pre >= FX_MARGIN and m_s >= FX_MARGIN:
            break
    else:
        raise RuntimeError("no threshold keeps the fixture margins")
    st_cal = set_stats(s_cal, on_cal, thr)

    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    for fn in ("config.json", "model.safetensors", "reference.json", "logits.f32"):
        shutil.copyfile(os.path.join(src, fn), os.path.join(out, fn))
    meta = {
        "lazyneuron.predictor.activation": "none",
        "lazyneuron.predictor.threshold": "100.0",
        "lazyneuron.predictor.method": "svd",
        "lazyneuron.predictor.layers": "1",
        "lazyneuron.predictor.ranks": json.dumps({"0": FX_RANK}),
        "lazyneuron.predictor.note": "test fixture: layer 0 only; its threshold tensor overrides "
                                     "the global 100.0 (which would predict nothing)",
    }
    write_predictor(os.path.join(out, "predictor.safetensors"), {0: pt}, meta)
    back, meta_back = load_predictor(os.path.join(out, "predictor.safetensors"))
    assert set(back) == {0} and all(torch.equal(back[0][k], pt[k]) for k in pt)

    sel = rec[0]["sel"]
    on = [r["pre"] > 0 for r in rec]
    # The same forward in float32 must give the same sets (that is what the margins are for).
    l32, rec32 = forward64(cfg, {k: v.float() for k, v in stored.items()}, tokens, {0: pt},
                           dtype=torch.float32)
    assert torch.equal(rec32[0]["sel"], sel)
    assert all(torch.equal(r32["pre"] > 0, o) for r32, o in zip(rec32, on))
    err32 = (l32.double() - logits).abs().max().item()
    logits32 = logits.to(torch.float32)
    with open(os.path.join(out, "logits_predictor.f32"), "wb") as fh:
        fh.write(mf.tensor_bytes(logits32))
    top2 = torch.topk(logits, 2, dim=-1).values
    refp = {
        "tokens": tokens,
        "n_tokens": len(tokens),
        "vocab_size": cfg["vocab"],
        "logits_file": "logits_predictor.f32",
        "logits_shape": [len(tokens), cfg["vocab"]],
        "predictor_file": "predictor.safetensors",
        "predictor_layers": [0],
        "rank": [FX_RANK, None],
        "activation": "none",
        "threshold_global": 100.0,
        "threshold": [thr, None],
        "predicted_counts": [sel.sum(dim=1).tolist(), None],
        "active_counts": [(on[0] & sel).sum(dim=1).tolist(), on[1].sum(dim=1).tolist()],
        "fired_counts": [on[0].sum(dim=1).tolist(), on[1].sum(dim=1).tolist()],
        "missed_counts": [(on[0] & ~sel).sum(dim=1).tolist(), [0] * len(tokens)],
        "min_abs_score_minus_threshold": [float("%.3g" % (rec[0]["score"] - thr).abs().min().item()),
                                          None],
        "min_abs_fc1_preactivation": [float("%.3g" % r["pre"].abs().min().item()) for r in rec],
        "logit_scale": float(logits32.abs().max().item()),
        "argmax": torch.argmax(logits, dim=-1).tolist(),
        "min_top2_gap": float("%.3g" % (top2[:, 0] - top2[:, 1]).min().item()),
        "max_abs_diff_vs_no_predictor": float("%.3g" % (logits - base).abs().max().item()),
        "float32_forward_max_abs_diff": float("%.3g" % err32),
        "calibration": "threshold for recall %.2f on 64 seeded random %d-token sequences "
                       "(recall there %.4f, predicted %.3f of d_ff), moved into a gap of the "
                       "reference scores" % (FX_RECALL, cfg["n_tokens"], st_cal["recall"],
                                             st_cal["size"]),
        "description": "tests/data/opt-preln with an SVD rank-8 predictor on layer 0 (layer 1 "
                       "has none); float64 forward of tools/train/train_predictor.py (forward64) with "
                       "fc1 outputs outside the predicted set forced to 0",
    }
    with open(os.path.join(out, "reference_predictor.json"), "w") as fh:
        json.dump(refp, fh, indent=1)
        fh.write("\n")
    print("fixture: threshold %.6g (calibrated %.6g), predicted per token %s, fired %s, "
          "missed %s, margins s %.3g pre %.3g, max|logit diff| vs none %.3g"
          % (thr, thr0, refp["predicted_counts"][0], refp["fired_counts"][0],
             refp["missed_counts"][0], refp["min_abs_score_minus_threshold"][0],
             min(refp["min_abs_fc1_preactivation"]), refp["max_abs_diff_vs_no_predictor"]))
    for fn in sorted(os.listdir(out)):
        print("  wrote %-50s %8d bytes" % (os.path.join("tests/data/predictor/opt-preln", fn),
                                          os.path.getsize(os.path.join(out, fn))))


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = mf.repo_root()
    ap.add_argument("--model", default=os.path.join(root, "models", "tiny-opt"))
    ap.add_argument("--out", help="default: MODEL/predictor.safetensors")
    ap.add_argument("--recall", type=float, default=0.99, help="recall target (held-out)")
    ap.add_argument("--cal-margin", type=float, default=0.002,
                    help="calibrate the threshold to recall + this on the calibration part")
    ap.add_argument("--select", choices=["cost", "size"], default="cost",
                    help="rank rule: lowest up-projection cost, or smallest rank within 10 %% "
                         "of the smallest predicted set")
    ap.add_argument("--init", choices=["random", "svd"], default="random",
                    help="trained predictor's start (svd needs --act none)")
    ap.add_argument("--svd", action="store_true",
                    help="training-free SVD of fc1 or the gate (activation none)")
    ap.add_argument("--ranks", default="16,32,64,128")
    ap.add_argument("--bytes", type=int, default=262144, help="fit bytes recorded")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--act", choices=["relu", "none"], default="relu", help="trained form")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--pos-weight", choices=["layer", "neuron"], default="layer",
                    help="BCE positive weight (1-p)/p from the layer's or each neuron's rate")
    ap.add_argument("--card", help="write the predictor card (markdown) here")
    ap.add_argument("--card-json", help="write the evaluation as JSON here (for --card of another run)")
    ap.add_argument("--include", action="append", default=[],
                    help="JSON of another run's evaluation to add to the card")
    ap.add_argument("--card-from", metavar="JSON",
                    help="write --card from a finished run's --card-json (no training)")
    ap.add_argument("--make-fixture", action="store_true",
                    help="write tests/data/predictor/opt-preln and exit")
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    if a.make_fixture:
        mf.check_layernorm_against_torch()
        make_fixture(a)
        return
    if a.svd:
        a.act = "none"
    assert a.init == "random" or a.act == "none", "--init svd needs --act none"
    a.cal_recall = min(1.0, a.recall + a.cal_margin)
    if a.card_from:
        assert a.card, "--card-from needs --card"
        card_from(a)
        return
    method = "svd" if a.svd else "trained"
    out = a.out or os.path.join(a.model, "predictor.safetensors")

    def log(s):
        print(s, flush=True)

    wall0 = time.time()
    arch = load_model(a.model)
    a.ffn = arch.ffn
    data = corpus(a.seed)
    log("corpus: fit %d / calibration %d / held-out %d fortunes; %d / %d / %d bytes"
        % (data["n"] + (data["fit"].numel(), data["cal"].numel(), data["val"].numel())))
    layers, info = build(arch, a, data, log)
    meta = metadata(a, a.act, method, layers, info)
    size = write_predictor(out, layers, meta)
    log("wrote %s (%d bytes)" % (out, size))

    preds, meta_back = load_predictor(out)          # evaluate exactly what was written
    assert meta_back == meta
    vw = tiny_training.val_windows(data["val"], arch.window)
    res = evaluate(arch, preds, a.act, vw, a)
    for l, r in res["layers"].items():
        log("held-out layer %d: recall alone %.4f deployed %.4f, size %.4f (true %.4f, x%.2f)"
            % (l, r["dense"]["recall"], r["deployed"]["recall"], r["deployed"]["size"],
               r["deployed"]["true"], r["deployed"]["rel"]))
    log("held-out bits/byte: %.4f with predictor, %.4f without (%+.2f %%); wall %.0fs"
        % (res["bpb_pred"], res["bpb_dense"], 100 * (res["bpb_pred"] / res["bpb_dense"] - 1),
           time.time() - wall0))
    cmd = "/usr/bin/python3 tools/train/train_predictor.py" + "".join(" " + x for x in sys.argv[1:])
    shipped = os.path.abspath(out) == os.path.abspath(os.path.join(a.model, "predictor.safetensors"))
    sec = card_section(section_title(a, shipped, os.path.basename(out)), res, preds, info, a.act,
                       method, cmd, arch)
    if a.card_json:
        with open(a.card_json, "w") as fh:
            json.dump(dict(section=sec, res=res, wall=time.time() - wall0), fh, indent=1)
    if a.card:
        write_card(a.card, a, arch, sec, included(a), data, time.time() - wall0, res)


def section_title(a, shipped, name):
    """The heading of a run's card section (and its row in the summary)."""
    if shipped:
        return "%s predictor (%s)" % ("SVD" if a.svd else "Trained", name)
    if a.svd:
        return "SVD predictor (training-free; not shipped)"
    return ("Alternative, not shipped: trained %s predictor%s"
            % ("linear" if a.act == "none" else "relu", " from an SVD start" if a.init == "svd" else ""))


def included(a):
    """(section, title, res) of the runs --include names (their --card-json files)."""
    others = []
    for path in a.include:
        with open(path) as fh:
            j = json.load(fh)
        j["res"]["layers"] = {int(k): v for k, v in j["res"]["layers"].items()}
        title = j["section"].split("\n")[0].lstrip("# ")
        others.append((j["section"], title, j["res"]))
    return others


def card_from(a):
    """--card-from: the card of a finished run (its --card-json: section, evaluation, wall time)
    with --include's runs beside it, without training again.  The run's options (--recall,
    --lr, ...) must be given again as they were: the card's method text is made from them."""
    with open(a.card_from) as fh:
        j = json.load(fh)
    j["res"]["layers"] = {int(k): v for k, v in j["res"]["layers"].items()}
    arch = load_model(a.model)
    a.ffn = arch.ffn
    cmd = "/usr/bin/python3 tools/train/train_predictor.py" + "".join(" " + x for x in sys.argv[1:])
    write_card(a.card, a, arch, j["section"], included(a), corpus(a.seed), j["wall"], j["res"],
               assembled=cmd)


def summary_row(name, res):
    L = res["layers"].values()
    m = lambda f: sum(f(r) for r in L) / len(L)  # noqa: E731
    return ("| %s | %.4f | %.4f | %.1f %% | %.1f %% | %.2f | %.4f | %+.2f %% |"
            % (name, m(lambda r: r["dense"]["recall"]), m(lambda r: r["deployed"]["recall"]),
               100 * m(lambda r: r["deployed"]["size"]), 100 * m(lambda r: r["deployed"]["true"]),
               m(lambda r: r["deployed"]["rel"]), res["bpb_pred"],
               100 * (res["bpb_pred"] / res["bpb_dense"] - 1)))


def write_card(path, a, arch, sec, others, data, wall, res=None, assembled=None):
    sel = ("the one with the lowest up-projection cost per token: r·(d_model + d_ff) MACs for "
           "the predictor plus |S|·d_model for the predicted {p} rows, relative to dense {p} "
           "(d_ff·d_model); the search stops when the cost rises. At d_model 128 a rank-128 "
           "predictor alone costs more than dense {p}, so small ranks win."
           .format(p=arch.proj_name) if a.select == "cost"
           else "the smallest rank whose predicted set is within %d %% of the smallest set of "
           "all ranks tried." % round(100 * SIZE_TOL))
    init = ("starting from the rank-r SVD predictor (%s)" % arch.svd_start
            if a.init == "svd" else "random (torch default) initialisation")
    text = CARD_HEAD % dict(recall=a.recall, bytes=a.bytes, fit=data["fit"].numel(),
                            lr=a.lr, batch=a.batch, epochs=a.epochs, init=init,
                            patience=a.patience, calrec=a.cal_recall, margin=a.cal_margin,
                            select=sel,
                            cal=data["cal"].numel(), val=data["val"].numel(),
                            nfit=data["n"][0], ncal=data["n"][1], nval=data["n"][2],
                            ranks=a.ranks, wall=wall / 60, name=arch.name, intro=arch.intro,
                            layers=arch.n_layers, script=arch.script, window=arch.window,
                            fired=arch.fired_rule)
    if assembled:   # --card-from: say so, the wall time is the trained run's
        text = text.replace("Wall time of the run that wrote this card",
                            "Wall time of the trained run") + \
            "The card was then written from the runs' saved evaluations by `%s`.\n" % assembled
    if res is not None:
        text += ("\n## Summary (held-out split, means over layers)\n\n"
                 "No predictor: %.4f bits per byte.\n\n"
                 "| predictor | recall alone | recall deployed | predicted size | true active "
                 "| × true | bits/byte | vs none |\n|---|---|---|---|---|---|---|---|\n"
                 % res["bpb_dense"])
        text += summary_row("**trained, shipped**", res) + "\n"
        for _, title, r in others:
            text += summary_row(title, r) + "\n"
    text += "\n" + sec + "\n" + "".join("\n" + o + "\n" for o, _, _ in others)
    text += arch.card_notes(a, res, others)
    with open(path, "w") as fh:
        fh.write(text)


CARD_HEAD = """# %(name)s activation predictor (`predictor.safetensors`)

Per layer, a small network that guesses from the MLP input x (%(intro)s Neuron i is predicted active when s_i >= threshold. Written by
`tools/train/train_predictor.py` (see its docstring for the format); every number below comes from
the runs that wrote this card.

## File format

| tensor | dtype | shape |
|---|---|---|
| `layers.N.predictor.w1` | F32 | [r_N][d_model] |
| `layers.N.predictor.b1` | F32 | [r_N] |
| `layers.N.predictor.w2` | F32 | [d_ff][r_N] |
| `layers.N.predictor.b2` | F32 | [d_ff] |
| `layers.N.predictor.threshold` | F32 | [1] (overrides the global threshold) |

`__metadata__`: `lazyneuron.predictor.activation` `relu` (s = w2 relu(w1 x + b1) + b2) or
`none` (s = w2 (w1 x + b1) + b2), `lazyneuron.predictor.threshold` (global, here "0.0", but
every layer carries its own), `lazyneuron.predictor.method` `trained`/`svd`,
`lazyneuron.predictor.layers` (count), plus `recall_target`, `ranks` and `thresholds` (JSON
text) for information. The shipped file is the trained predictor, for all %(layers)d layers.

## Data and calibration

Only the model's TRAINING split is used (%(script)s's split, seed 1234: %(nval)d
fortunes / %(val)d bytes held out). Its fortunes are split again (seeded) into a fit part
(%(nfit)d fortunes, %(fit)d bytes) and a calibration part (%(ncal)d fortunes, %(cal)d bytes).
The float32 torch model runs over %(bytes)d bytes of random %(window)d-byte fit windows and over all
non-overlapping %(window)d-byte windows of the calibration part, recording each layer's MLP input;
"fired" = %(fired)s.

* **Training** (trained predictor): Adam (lr %(lr)g, halved every 4 epochs, batch %(batch)d,
  at most %(epochs)d epochs), BCE on "fired" with pos_weight = (1-p)/p (p = the layer's firing
  rate on the fit part), %(init)s. After each epoch the threshold is calibrated on the
  calibration part and the epoch with the smallest predicted set at that recall is kept
  (early stopping, patience %(patience)d).
* **Threshold**: per layer, the largest t such that at least %(calrec)s of the fired
  (token, neuron) pairs of the calibration part have s >= t (recall pooled over tokens and
  neurons). That is the target %(recall)s plus a margin of %(margin)g, so that sampling
  error on unseen text does not take the recall below the target.
* **Rank per layer**: from `%(ranks)s`, %(select)s
* **Evaluation**: the held-out split, which nothing above saw, with the float32 torch model.

Wall time of the run that wrote this card: %(wall).1f min (one thread, nice 19, shared machine).
"""


OPT_NOTES = """
## Notes

* **Rank 16 against 32.** The cost rule picks rank 16 in every layer. Rank 32 predicts sets
  only 1.2-1.4 times the true active set, against 2.1-3.1 times at rank 16. But at d_model 128
  the rank-32 predictor alone costs 0.31 of dense fc1, so its total cost is higher (see the
  "ranks tried" tables). `--select size` picks by set size instead (rank 32 or more).
* **Test fixture.** `tests/data/predictor/opt-preln/` (`--make-fixture`) has an SVD rank-8
  predictor for layer 0 of `tests/data/opt-preln`, and float64 logits with the mask applied.
  See `tests/data/predictor/README.md`.
"""


if __name__ == "__main__":
    main()
