#!/usr/bin/python3
"""An independent float64 forward of LLaMA-family decoders (LLaMA, Mistral, ReluLLaMA, ProSparse,
Bamboo / TurboSparse), written from torch ops after Hugging Face's modeling_llama.py semantics.

Used by tools/make_llama_fixtures.py and tools/train_tiny_llama.py; `transformers` is not needed.

    forward(config, W, ids, cache=None, past=0, record=None) -> logits [n, vocab] (float64)

`config` is the parsed config.json (a dict, Hugging Face key names); `W` maps Hugging Face tensor
names to float64 tensors (the stored weights widened).  Per decoder layer:

  * h = RMSNorm(x) = x * rsqrt(mean(x^2) + rms_norm_eps) * weight   (input_layernorm)
  * q/k/v = h @ W.T (+ bias iff attention_bias); heads of head_dim, where head_dim is
    config["head_dim"] if present, else hidden_size / num_attention_heads.  q has
    num_attention_heads heads, k/v have num_key_value_heads (GQA: query head j reads KV head
    j // (num_attention_heads / num_key_value_heads), as HF's repeat_kv does).
  * rotary embedding on q and k, as HF applies it: inv_freq[i] = 1 / rope_theta^(2i / head_dim),
    i < head_dim/2; angle = position * inv_freq (position divided by `factor` for
    rope_scaling {"type" or "rope_type": "linear"}); cos/sin repeated twice over head_dim
    (cat(freqs, freqs)); x_rot = x * cos + rotate_half(x) * sin with
    rotate_half(x) = cat(-x[half:], x[:half]).  So dimension i pairs with i + head_dim/2
    (the "NeoX" half-split layout, not interleaved pairs).
  * scores = q k^T / sqrt(head_dim), causal mask, softmax, @ v, o_proj (+ bias iff attention_bias);
    x = x + attn
  * h = RMSNorm(x) (post_attention_layernorm); x = x + down(act(gate(h)) * up(h)), where act is
      relu     max(x, 0)                                   (ReluLLaMA, TurboSparse Mistral)
      fatrelu  x if x > hidden_act_param else 0            (ProSparse / MiniCPM-S)
      silu     x * sigmoid(x)                              (LLaMA / Mistral SwiGLU)
    and for architectures ["BambooForCausalLM"] (dReLU, TurboSparse/Bamboo) the MLP is
    down(relu(gate(h)) * relu(up(h))): its config says hidden_act "relu" but the activation is
    applied to both projections.
Then the final RMSNorm (model.norm) and logits = x @ lm_head.T, where lm_head is
model.embed_tokens.weight when tie_word_embeddings is true (or lm_head.weight is absent).

No bias on the MLP (LLaMA's mlp_bias is not supported: no model we target has one), no
embedding scale.  The rotary angles are computed in float64 (HF computes inv_freq in float32);
the difference is below 1e-5 rad at position 64.
"""

import math

import torch

DRELU_ARCHS = ("BambooForCausalLM",)


# --------------------------------------------------------------------------------------------
# Config helpers
# --------------------------------------------------------------------------------------------


def head_dim(c):
    return c["head_dim"] if c.get("head_dim") else c["hidden_size"] // c["num_attention_heads"]


def n_kv_heads(c):
    return c.get("num_key_value_heads") or c["num_attention_heads"]


def activation(c):
    """'relu', 'fatrelu', 'drelu' or 'silu': the MLP rule the config implies."""
    if any(a in DRELU_ARCHS for a in c.get("architectures", [])):
        assert c["hidden_act"] == "relu", "dReLU models say hidden_act relu"
        return "drelu"
    act = c["hidden_act"]
    assert act in ("relu", "fatrelu", "silu"), act
    return act


def threshold(c):
    """The switch point of the activation: hidden_act_param for fatrelu, 0 otherwise."""
    return float(c.get("hidden_act_param", 0.0)) if activation(c) == "fatrelu" else 0.0


def rope_factor(c):
    rs = c.get("rope_scaling")
    if not rs:
        return 1.0
    kind = rs.get("rope_type", rs.get("type"))
    assert kind == "linear", ("only linear rope_scaling is supported", rs)
    return float(rs["factor"])


def tied(c):
    return c.get("tie_word_embeddings", False)


def layer_names(i):
    p = "model.layers.%d." % i
    return dict(
        ln1=p + "input_layernorm.weight",
        q=p + "self_attn.q_proj.weight", k=p + "self_attn.k_proj.weight",
        v=p + "self_attn.v_proj.weight", o=p + "self_attn.o_proj.weight",
        qb=p + "self_attn.q_proj.bias", kb=p + "self_attn.k_proj.bias",
        vb=p + "self_attn.v_proj.bias", ob=p + "self_attn.o_proj.bias",
        ln2=p + "post_attention_layernorm.weight",
        gate=p + "mlp.gate_proj.weight", up=p + "mlp.up_proj.weight",
        down=p + "mlp.down_proj.weight",
    )


def tensor_shapes(c):
    """{name: shape} of every tensor a checkpoint of this config holds, HF names."""
    H, V, F = c["hidden_size"], c["vocab_size"], c["intermediate_size"]
    hd, nh, nkv = head_dim(c), c["num_attention_heads"], n_kv_heads(c)
    s = {"model.embed_tokens.weight": [V, H], "model.norm.weight": [H]}
    if not tied(c):
        s["lm_head.weight"] = [V, H]
    for i in range(c["num_hidden_layers"]):
        n = layer_names(i)
        s[n["ln1"]] = [H]
        s[n["ln2"]] = [H]
        s[n["q"]] = [nh * hd, H]
        s[n["k"]] = [nkv * hd, H]
        s[n["v"]] = [nkv * hd, H]
        s[n["o"]] = [H, nh * hd]
        if c.get("attention_bias", False):
            s[n["qb"]] = [nh * hd]
            s[n["kb"]] = [nkv * hd]
            s[n["vb"]] = [nkv * hd]
            s[n["ob"]] = [H]
        s[n["gate"]] = [F, H]
        s[n["up"]] = [F, H]
        s[n["down"]] = [H, F]
    return s


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * w


def linear(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


def rope_cos_sin(c, positions, dtype=torch.float64):
    """cos, sin of shape [n, head_dim] for the given integer positions (HF layout), computed in
    float64 and returned in dtype."""
    hd = head_dim(c)
    theta = float(c.get("rope_theta", 10000.0))
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    t = torch.tensor(positions, dtype=torch.float64) / rope_factor(c)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def apply_rope(x, cos, sin):
    """x: [heads, n, head_dim]; cos/sin: [n, head_dim]."""
    return x * cos + rotate_half(x) * sin


def act_gate(c, gate, up):
    """act(gate) * up, or relu(gate) * relu(up) for dReLU; also the 'active' mask."""
    a = activation(c)
    if a == "relu":
        g = torch.relu(gate)
        return g * up, g != 0
    if a == "fatrelu":
        g = torch.where(gate > threshold(c), gate, torch.zeros_like(gate))
        return g * up, g != 0
    if a == "drelu":
        g, u = torch.relu(gate), torch.relu(up)
        return g * u, (g * u) != 0
    g = torch.nn.functional.silu(gate)
    return g * up, g != 0


def new_cache(c):
    return [None] * c["num_hidden_layers"]


# --------------------------------------------------------------------------------------------
# Forward
# --------------------------------------------------------------------------------------------


def forward(c, W, ids, cache=None, record=None, dtype=torch.float64, predictor=None):
    """Logits [n, vocab] for ids at positions past..past+n-1, past = cached length.
    record (dict): record[i] = {"h": MLP input, "gate", "up", "active"} per layer.
    dtype: of W and of the arithmetic (float64 for references, float32 to mimic a C forward).
    predictor(i, x, h): an activation predictor's mask [n, F] (bool) for layer i from the
    residual x before the MLP's norm and its output h, or None; the gate is zeroed outside it
    (a zero gate is inactive for every ReLU-family activation), which is what lazyneuron
    computes with a predictor."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    n = ids.shape[0]
    H = c["hidden_size"]
    hd, nh, nkv = head_dim(c), c["num_attention_heads"], n_kv_heads(c)
    assert nh % nkv == 0
    rep = nh // nkv
    eps = float(c["rms_norm_eps"])
    past = 0 if cache is None or cache[0] is None else cache[0][0].shape[1]
    cos, sin = rope_cos_sin(c, list(range(past, past + n)), dtype)
    q_pos = torch.arange(past, past + n).unsqueeze(1)
    k_pos = torch.arange(past + n).unsqueeze(0)
    causal = k_pos > q_pos
    g = W.get

    x = W["model.embed_tokens.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        nm = layer_names(i)
        h = rms_norm(x, W[nm["ln1"]], eps)
        q = linear(h, W[nm["q"]], g(nm["qb"])).view(n, nh, hd).transpose(0, 1)
        k = linear(h, W[nm["k"]], g(nm["kb"])).view(n, nkv, hd).transpose(0, 1)
        v = linear(h, W[nm["v"]], g(nm["vb"])).view(n, nkv, hd).transpose(0, 1)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if cache is not None:
            if cache[i] is not None:
                k = torch.cat([cache[i][0], k], dim=1)
                v = torch.cat([cache[i][1], v], dim=1)
            cache[i] = [k, v]
        k_all = k.repeat_interleave(rep, dim=0)   # [nh, past+n, hd]: head j reads KV j // rep
        v_all = v.repeat_interleave(rep, dim=0)
        scores = (q @ k_all.transpose(1, 2)) / math.sqrt(hd)
        scores = scores.masked_fill(causal.unsqueeze(0), float("-inf"))
        a = (torch.softmax(scores, dim=-1) @ v_all).transpose(0, 1).reshape(n, nh * hd)
        x = x + linear(a, W[nm["o"]], g(nm["ob"]))

        h = rms_norm(x, W[nm["ln2"]], eps)
        gate = linear(h, W[nm["gate"]])
        mask = predictor(i, x, h) if predictor is not None else None
        if mask is not None:
            gate = torch.where(mask, gate, torch.zeros_like(gate))
        up = linear(h, W[nm["up"]])
        inner, active = act_gate(c, gate, up)
        y = linear(inner, W[nm["down"]])
        if record is not None:
            record[i] = dict(h=h, gate=gate, up=up, active=active, inner=inner, y=y)
        x = x + y

    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W.get("lm_head.weight")
    if tied(c) or head is None:
        head = W["model.embed_tokens.weight"]
    return x @ head.T


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def check_decode(c, W, tokens, full):
    """Incremental forwards with the KV cache equal the full forward (float64, 1e-10); three
    splits: prefill n/2 then singles; singles; chunks 3,1,4,1,5 then singles."""
    n = len(tokens)
    splits = [[n // 2] + [1] * (n - n // 2), [1] * n, [3, 1, 4, 1, 5] + [1] * max(0, n - 14)]
    worst = 0.0
    for sp in splits:
        sp = [s for s in sp if s > 0]
        while sum(sp) > n:
            sp.pop()
        if sum(sp) < n:
            sp.append(n - sum(sp))
        cache, outs, at = new_cache(c), [], 0
        for s in sp:
            outs.append(forward(c, W, tokens[at:at + s], cache=cache))
            at += s
        worst = max(worst, (torch.cat(outs) - full).abs().max().item())
    assert worst < 1e-10, ("incremental decode differs from the full forward", worst)
    return worst


def check_sparse_down(c, W, rec):
    """down(inner) from only the active rows of down.T (as the C library reads them) equals the
    dense down projection within 1e-12."""
    for i, r in rec.items():
        wt = W[layer_names(i)["down"]].T.contiguous()   # [F, H]: one row per neuron
        for t in range(r["inner"].shape[0]):
            idx = torch.nonzero(r["active"][t]).flatten()
            ys = r["inner"][t, idx] @ wt[idx]
            err = (ys - r["y"][t]).abs().max().item()
            assert err <= 1e-12 * max(1.0, r["y"][t].abs().max().item()), ("sparse down", i, err)


def slow_forward(c, W, ids):
    """A second, deliberately different formulation, for self-checks only: one token and one
    head at a time, rotary embedding as complex multiplication of (x[i], x[i + hd/2]) by
    e^{i·angle}, the KV head of query head j found by integer division, softmax by hand,
    RMSNorm via torch.nn.functional.normalize (x / ||x|| * sqrt(H) when eps is 0)."""
    ids = list(ids)
    H = c["hidden_size"]
    hd, nh, nkv = head_dim(c), c["num_attention_heads"], n_kv_heads(c)
    rep, half, eps = nh // nkv, hd // 2, float(c["rms_norm_eps"])
    theta, fac = float(c.get("rope_theta", 10000.0)), rope_factor(c)
    g = W.get

    def norm(x, w):
        ms = float((x * x).sum()) / H
        return x / math.sqrt(ms + eps) * w

    def rot(vec, pos):
        out = vec.clone()
        for j in range(half):
            ang = (pos / fac) * theta ** (-2.0 * j / hd)
            z = complex(vec[j].item(), vec[j + half].item()) * complex(math.cos(ang), math.sin(ang))
            out[j], out[j + half] = z.real, z.imag
        return out

    def lin(x, wn, bn=None):
        y = torch.mv(W[wn], x)
        return y if g(bn) is None else y + W[bn]

    xs = [W["model.embed_tokens.weight"][t].clone() for t in ids]
    for i in range(c["num_hidden_layers"]):
        nm = layer_names(i)
        ks, vs, new = [], [], []
        for p, x in enumerate(xs):
            h = norm(x, W[nm["ln1"]])
            q = lin(h, nm["q"], nm["qb"]).view(nh, hd)
            k = lin(h, nm["k"], nm["kb"]).view(nkv, hd)
            v = lin(h, nm["v"], nm["vb"]).view(nkv, hd)
            ks.append(torch.stack([rot(k[j], p) for j in range(nkv)]))
            vs.append(v)
            heads = []
            for j in range(nh):
                qj = rot(q[j], p)
                kv = j // rep
                s = [float(qj @ ks[t][kv]) / math.sqrt(hd) for t in range(p + 1)]
                m = max(s)
                e = [math.exp(z - m) for z in s]
                z = sum(e)
                heads.append(sum((e[t] / z) * vs[t][kv] for t in range(p + 1)))
            x = x + lin(torch.cat(heads), nm["o"], nm["ob"])
            h = norm(x, W[nm["ln2"]])
            inner, _ = act_gate(c, lin(h, nm["gate"]).unsqueeze(0), lin(h, nm["up"]).unsqueeze(0))
            new.append(x + lin(inner[0], nm["down"]))
        xs = new
    head = W.get("lm_head.weight")
    if tied(c) or head is None:
        head = W["model.embed_tokens.weight"]
    return torch.stack([torch.mv(head, norm(x, W["model.norm.weight"])) for x in xs])


def self_test():
    """RMSNorm, rotate_half and GQA against independent formulations on random data."""
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(5, 24, generator=gen, dtype=torch.float64) * 3 + 1
    w = torch.randn(24, generator=gen, dtype=torch.float64)
    ref = torch.nn.functional.normalize(x, dim=-1) * math.sqrt(24) * w   # eps = 0 case
    assert (rms_norm(x, w, 0.0) - ref).abs().max().item() < 1e-12
    # rotary: the rotation preserves the norm of every (i, i + hd/2) pair
    c = dict(hidden_size=24, num_attention_heads=2, rope_theta=10000.0)
    cos, sin = rope_cos_sin(c, [0, 3, 7])
    q = torch.randn(2, 3, 12, generator=gen, dtype=torch.float64)
    r = apply_rope(q, cos, sin)
    assert (r[:, 0] - q[:, 0]).abs().max().item() < 1e-15   # position 0 is the identity
    pn = lambda t: t[..., :6] ** 2 + t[..., 6:] ** 2   # noqa: E731
    assert (pn(r) - pn(q)).abs().max().item() < 1e-12
