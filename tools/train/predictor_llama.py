#!/usr/bin/python3
"""The LLaMA side of tools/train/train_predictor.py: the architecture object it trains and evaluates
a predictor with for a gated-ReLU LLaMA (models/tiny-llama), and the test data that checks the
C library's predictor path on that model.

For out = down(relu(gate(x)) * up(x)) the predictor guesses, from the MLP input x (the output
of post_attention_layernorm), which neurons have gate(x) > 0; the library computes the gate
only on the predicted rows and gives every other neuron gate 0 (lib/forward/mlp_gated.c), so
its up and down rows are not read either.

    /usr/bin/python3 tools/train/predictor_llama.py --make-test-data   # tests/data/predictor/tiny-llama

--make-test-data needs the corpus (the held-out split) and models/tiny-llama/predictor.safetensors;
it writes what tests/test_predictor.c compares the library with (see
tests/data/predictor/README.md):
  * a short held-out text whose scores and gate pre-activations all stay at least MARGIN away
    from their thresholds, with the float64 logits of tools/fixtures/llama_reference.py with the
    predictor (so a float32 forward must give the same sets and logits within 1e-4);
  * the first HELDOUT_WINDOWS windows of the held-out split, with the float32 torch forward's
    bits per byte with and without the predictor and its deployed recall and predicted
    fraction per layer (the card's evaluation on a part of its text).
"""

import argparse
import json
import os
import shutil
import sys
from types import SimpleNamespace

import torch

sys.dont_write_bytecode = True   # write nothing into tools/
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "fixtures")]  # tools/fixtures: the float64 references
import llama_reference as lr       # noqa: E402  (the independent float64 forward)
import make_fixtures as mf         # noqa: E402  (tensor_bytes, repo_root, widen)
import train_predictor as tp       # noqa: E402  (scores, fired, count_set, predictor I/O)
import tiny_training as tt         # noqa: E402  (corpus, split, windows)
import train_tiny_llama as ttl     # noqa: E402  (TinyLlama)

# tools/train/train_tiny_llama.py trains and evaluates on 128-byte windows (--seq-len); its
# positions beyond that were never trained, so the predictor is fitted and judged on the same.
WINDOW = 128
MARGIN = 1e-4             # |s - threshold| and |gate pre-activation| of the short text
SHORT_BYTES = 32          # the short text: a held-out fortune's first bytes
HELDOUT_WINDOWS = 64      # 64 windows of 128 bytes: 8 KB of held-out text for the C test


class LlamaModel:
    """tiny-llama (train_tiny_llama.TinyLlama): x is post_attention_layernorm's output, the gate
    the projection (no bias)."""
    window = WINDOW
    proj_name = "gate_proj"
    script = "tools/train/train_tiny_llama.py"
    fired_rule = "gate_proj x > 0 (relu of the gate; up_proj does not decide it)"
    intro = ("the output of the layer's\n`post_attention_layernorm`, the vector gate_proj and "
             "up_proj read) which neurons of the gated\nMLP down(relu(gate(x)) * up(x)) fire "
             "(gate(x) > 0), so the runtime computes only those gate rows,\nand then only their "
             "up and down rows.")
    svd_start = "w1 = S_r V_r^T, w2 = U_r, b2 = 0: the gate has no bias"

    def __init__(self, model_dir, c):
        assert lr.activation(c) == "relu" and not c.get("attention_bias") and not c.get("mlp_bias")
        a = SimpleNamespace(d_model=c["hidden_size"], heads=c["num_attention_heads"],
                            kv_heads=lr.n_kv_heads(c), ffn=c["intermediate_size"],
                            layers=c["num_hidden_layers"], max_pos=c["max_position_embeddings"],
                            eps=c["rms_norm_eps"], rope_theta=c["rope_theta"],
                            init_std=c.get("initializer_range", 0.02))
        assert c["vocab_size"] == tt.VOCAB and not lr.tied(c)
        assert lr.head_dim(c) == a.d_model // a.heads
        model = ttl.TinyLlama(a)
        sd, _ = tp.read_safetensors(os.path.join(model_dir, "model.safetensors"))
        model.load_state_dict(sd, strict=True)
        model.eval()
        self.name = os.path.basename(os.path.normpath(model_dir))
        self.config = c
        self.model, self.d_model, self.ffn, self.n_layers = model, a.d_model, a.ffn, a.layers
        self.layers = model.model.layers

    def proj(self, i):
        return self.layers[i].mlp.gate_proj.weight, None

    def mlp_inputs(self, ids):
        """Per layer MLP inputs x [B, T, d] (post_attention_layernorm outputs)."""
        return tp.hooked_outputs(self.model, [l.post_attention_layernorm for l in self.layers], ids)

    @torch.no_grad()
    def forward_with_predictor(self, ids, preds, act, stats=None):
        """TinyLlama.forward with, in each layer that has a predictor, the gate of neurons
        outside the predicted set forced to 0 (so relu(gate) * up is 0 there, as in the
        library).  stats (optional): see train_predictor.count_set."""
        m = self.model
        x = m.model.embed_tokens(ids)
        for i, layer in enumerate(m.model.layers):
            x = x + layer.self_attn(layer.input_layernorm(x), m.cos, m.sin, m.mask)
            h = layer.post_attention_layernorm(x)
            pre = layer.mlp.gate_proj(h)
            g = torch.relu(pre)
            p = preds.get(i)
            if p is not None:
                sel = tp.scores(p, act, h) >= p["threshold"]
                g = g * sel
                tp.count_set(stats, i, sel, pre > 0)
            x = x + layer.mlp.down_proj(g * layer.mlp.up_proj(h))
        return m.lm_head(m.model.norm(x))

    def card_notes(self, a, res, others):
        return llama_notes(a, res)


def llama_notes(a, res):
    """The card's notes for tiny-llama, each number from this run."""
    L = res["layers"]
    rel = [L[l]["deployed"]["rel"] for l in sorted(L)]
    return """
## Notes

* **Why a predictor helps a gated MLP less than it seems.** Without a predictor the library
  already reads only the active rows of up_proj and down_proj (the gate decides them); the
  predictor saves the gate's rows: its cost column is relative to the dense gate_proj
  (d_ff·d_model MACs). The predicted sets are %.1f-%.1f times the true active set, so the up
  and down rows read with the predictor are those of the true set (the others have gate 0).
* **Windows.** tiny-llama was trained on 128-byte windows, so the fit, calibration and
  held-out windows here are 128 bytes (tiny-opt's card uses 256, its training window). The
  held-out bits per byte without a predictor is the model card's own number.
* **Test data.** `tests/data/predictor/tiny-llama/` (`tools/train/predictor_llama.py
  --make-test-data`) has a short held-out text with the float64 logits of
  `tools/fixtures/llama_reference.py` with this predictor, and 8 KB of the held-out split with this
  evaluation's numbers on it; `tests/test_predictor.c` checks the library against both. See
  `tests/data/predictor/README.md`.
""" % (min(rel), max(rel))


# --------------------------------------------------------------------------------------------
# Test data for the C library
# --------------------------------------------------------------------------------------------


def reference_forward(c, W, tokens, preds, act, dtype=torch.float64):
    """tools/fixtures/llama_reference.py's forward with the predictor (float64, or float32 to mimic the
    library); per layer the scores and the gate pre-activations before the mask (the record's
    "gate" is the masked one)."""
    rec = {}

    def predictor(i, x, h):
        gate = lr.linear(h, W[lr.layer_names(i)["gate"]])   # as the forward computes it
        p = preds.get(i)
        rec[i] = dict(gate=gate)
        if p is None:
            return None
        s = tp.scores({k: v.to(dtype) for k, v in p.items()}, act, h)
        rec[i]["score"] = s
        return s >= float(p["threshold"])

    logits = lr.forward(c, W, tokens, predictor=predictor, dtype=dtype)
    return logits, rec


def margins(rec, preds):
    """Smallest |score - threshold| and |gate pre-activation| over tokens, neurons, layers."""
    ms = min((r["score"] - float(preds[i]["threshold"])).abs().min().item()
             for i, r in rec.items() if "score" in r)
    mg = min(r["gate"].abs().min().item() for r in rec.values())
    return ms, mg


def make_test_data(a):
    root = mf.repo_root()
    model_dir = os.path.join(root, "models", "tiny-llama")
    out = os.path.join(root, "tests", "data", "predictor", "tiny-llama")
    with open(os.path.join(model_dir, "config.json")) as fh:
        arch = LlamaModel(model_dir, json.load(fh))
    c = arch.config
    preds, meta = tp.load_predictor(os.path.join(model_dir, "predictor.safetensors"))
    act = meta["lazyneuron.predictor.activation"]
    stored, _ = tp.read_safetensors(os.path.join(model_dir, "model.safetensors"))
    W = mf.widen(stored)

    # The short text: the first held-out fortune whose first SHORT_BYTES bytes keep every score
    # and gate pre-activation MARGIN away from its threshold (with the predictor applied).
    fortunes = tt.load_fortunes()
    _, va = tt.split_corpus(fortunes, 1234)
    tried = 0
    for f in va:
        if len(f) < SHORT_BYTES:
            continue
        tokens = list(f[:SHORT_BYTES])
        tried += 1
        logits, rec = reference_forward(c, W, tokens, preds, act)
        ms, mg = margins(rec, preds)
        if ms >= MARGIN and mg >= MARGIN:
            break
    else:
        raise RuntimeError("no held-out fortune keeps the margins")
    # The same forward in float32 (the library's precision) gives the same sets.
    W32 = {k: v.float() for k, v in stored.items()}
    l32, rec32 = reference_forward(c, W32, tokens, preds, act, dtype=torch.float32)
    for i in rec:
        th = float(preds[i]["threshold"])
        assert torch.equal(rec[i]["score"] >= th, rec32[i]["score"] >= th), i
        assert torch.equal(rec[i]["gate"] > 0, rec32[i]["gate"] > 0), i
    err32 = (l32.double() - logits).abs().max().item()
    base = lr.forward(c, W, tokens)
    # The torch module's forward with the predictor agrees with the reference (float32).
    lt = arch.forward_with_predictor(torch.tensor([tokens]), preds, act)[0]
    errt = (lt.double() - logits).abs().max().item()
    assert errt < 1e-3, errt

    sel = {i: rec[i]["score"] >= float(preds[i]["threshold"]) for i in rec}
    on = {i: rec[i]["gate"] > 0 for i in rec}
    L = c["num_hidden_layers"]
    top2 = torch.topk(logits, 2, dim=-1).values
    logits32 = logits.to(torch.float32)
    refp = {
        "tokens": tokens,
        "n_tokens": len(tokens),
        "text": bytes(tokens).decode("utf-8", errors="replace"),
        "vocab_size": c["vocab_size"],
        "logits_file": "logits_predictor.f32",
        "logits_shape": [len(tokens), c["vocab_size"]],
        "predictor_file": "models/tiny-llama/predictor.safetensors",
        "activation": act,
        "threshold": [float(preds[i]["threshold"]) for i in range(L)],
        "predicted_counts": [sel[i].sum(dim=1).tolist() for i in range(L)],
        "fired_counts": [on[i].sum(dim=1).tolist() for i in range(L)],
        "active_counts": [(on[i] & sel[i]).sum(dim=1).tolist() for i in range(L)],
        "missed_counts": [(on[i] & ~sel[i]).sum(dim=1).tolist() for i in range(L)],
        "min_abs_score_minus_threshold": float("%.3g" % ms),
        "min_abs_gate_preactivation": float("%.3g" % mg),
        "logit_scale": float(logits32.abs().max().item()),
        "argmax": torch.argmax(logits, dim=-1).tolist(),
        "min_top2_gap": float("%.3g" % (top2[:, 0] - top2[:, 1]).min().item()),
        "max_abs_diff_vs_no_predictor": float("%.3g" % (logits - base).abs().max().item()),
        "float32_forward_max_abs_diff": float("%.3g" % err32),
        "fortunes_tried": tried,
        "description": "models/tiny-llama with its predictor: the first %d bytes of the first "
                       "held-out fortune (of %d tried) whose predictor scores and gate "
                       "pre-activations all stay >= %g from their thresholds; float64 forward "
                       "of tools/fixtures/llama_reference.py with gates outside the predicted set forced "
                       "to 0" % (SHORT_BYTES, tried, MARGIN),
    }

    # Held-out text: the card's evaluation on its first HELDOUT_WINDOWS windows.
    val = tt.to_stream(va)
    vw = tt.val_windows(val, WINDOW)[:HELDOUT_WINDOWS]
    text = bytes(val[:HELDOUT_WINDOWS * WINDOW + 1].tolist())
    assert torch.equal(torch.tensor(list(text)).view(-1)[:WINDOW + 1], vw[0])
    ns = argparse.Namespace(ffn=arch.ffn)
    res = tp.evaluate(arch, preds, act, vw, ns)
    held = {
        "text_file": "heldout.bin",
        "bytes": len(text),
        "window": WINDOW,
        "windows": HELDOUT_WINDOWS,
        "predicted_bytes": HELDOUT_WINDOWS * WINDOW,
        "bits_per_byte_with_predictor": res["bpb_pred"],
        "bits_per_byte_without": res["bpb_dense"],
        "recall_deployed": [res["layers"][l]["deployed"]["recall"] for l in range(L)],
        "predicted_fraction": [res["layers"][l]["deployed"]["size"] for l in range(L)],
        "active_fraction": [res["layers"][l]["deployed"]["true"] for l in range(L)],
        "description": "the first %d non-overlapping %d-byte windows of the held-out split "
                       "(the models' split, tools/train/tiny_training.py, seed 1234; fortunes end with "
                       "byte 0x02), every "
                       "byte after a window's first predicted; float32 torch forward "
                       "(tools/train/train_predictor.py's evaluation): recall and predicted fraction "
                       "as deployed (each layer's input with every predictor applied), pooled "
                       "over tokens and neurons" % (HELDOUT_WINDOWS, WINDOW),
    }

    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    with open(os.path.join(out, "logits_predictor.f32"), "wb") as fh:
        fh.write(mf.tensor_bytes(logits32))
    with open(os.path.join(out, "reference_predictor.json"), "w") as fh:
        json.dump(refp, fh, indent=1)
        fh.write("\n")
    with open(os.path.join(out, "heldout.bin"), "wb") as fh:
        fh.write(text)
    with open(os.path.join(out, "heldout.json"), "w") as fh:
        json.dump(held, fh, indent=1)
        fh.write("\n")
    print("short text %r (fortune %d tried): margins score %.3g gate %.3g; predicted per layer "
          "%s, missed %s; max|logit diff| vs none %.3g, float32 %.3g, torch module %.3g"
          % (refp["text"], tried, ms, mg, [sum(x) for x in refp["predicted_counts"]],
             [sum(x) for x in refp["missed_counts"]], refp["max_abs_diff_vs_no_predictor"],
             err32, errt))
    print("held-out %d bytes: %.4f bpb with, %.4f without; recall %s"
          % (len(text), held["bits_per_byte_with_predictor"], held["bits_per_byte_without"],
             ["%.4f" % x for x in held["recall_deployed"]]))
    for fn in sorted(os.listdir(out)):
        print("  wrote %-50s %8d bytes" % (os.path.join("tests/data/predictor/tiny-llama", fn),
                                          os.path.getsize(os.path.join(out, fn))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--make-test-data", action="store_true",
                    help="write tests/data/predictor/tiny-llama")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if not a.make_test_data:
        ap.error("train with tools/train/train_predictor.py --model models/tiny-llama; "
                 "this tool only makes the test data (--make-test-data)")
    make_test_data(a)


if __name__ == "__main__":
    main()
