#!/usr/bin/python3
"""What tools/train/train_tiny.py (models/tiny-opt) and tools/train/train_tiny_llama.py (models/tiny-llama)
share: the corpus and its split, the windows, the schedules, the training loop and the
evaluation, the training log's CSV and plot.  The two models differ only in their module, which
parameters decay and what their cards say; both must reproduce the committed models bit for bit,
so everything here keeps the order of its random draws and of its arithmetic.

  * Corpus: Debian's `fortunes` (/usr/share/games/fortunes/*, the plain-text files; a line
    holding only `%` separates fortunes), exact duplicates dropped, 5 % of the fortunes held out
    by a seeded permutation.  Tokens are bytes (vocab 256); byte 0x02 (OPT's eos id, absent
    from the corpus) ends every fortune.
  * Training: AdamW on random windows of the training stream, warm-up then cosine learning
    rate, an optional L1 penalty on the MLP's ReLU outputs (`pres`, the pre-activations the
    model returns beside its logits) ramped in, grad-norm clipping; every --log-every steps a
    row of held-out loss and per-layer density.
"""

import csv
import math
import os
import time

import torch
import torch.nn.functional as F

CORPUS_DIR = "/usr/share/games/fortunes"
EOS = 2          # OPT's bos/eos id; as a byte (STX) it never occurs in the corpus
VOCAB = 256      # token id == byte value; no other specials


# --------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------


def corpus_files():
    out = []
    for f in sorted(os.listdir(CORPUS_DIR)):
        p = os.path.join(CORPUS_DIR, f)
        if f.endswith((".dat", ".u8")) or os.path.islink(p) or not os.path.isfile(p):
            continue
        out.append(p)
    return out


def load_fortunes():
    """All fortunes (bytes, each ending with a newline), in file order, exact duplicates
    dropped."""
    seen, fortunes = set(), []
    for p in corpus_files():
        cur = []
        with open(p, "rb") as fh:
            lines = fh.read().split(b"\n")
        for line in lines + [b"%"]:
            if line == b"%":
                text = b"\n".join(cur).strip(b"\n")
                cur = []
                if text and text not in seen:
                    seen.add(text)
                    fortunes.append(text + b"\n")
            else:
                cur.append(line)
    return fortunes


def split_corpus(fortunes, seed, val_frac=0.05):
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(fortunes), generator=g).tolist()
    n_val = int(round(val_frac * len(fortunes)))
    val_idx = set(perm[:n_val])
    train = [f for i, f in enumerate(fortunes) if i not in val_idx]
    val = [f for i, f in enumerate(fortunes) if i in val_idx]
    return train, val


def to_stream(fortunes):
    """Every fortune followed by the end byte 0x02 (which also starts the next one)."""
    data = b"".join(f + bytes([EOS]) for f in fortunes)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).long()


def val_windows(stream, T):
    """Non-overlapping windows covering the held-out stream (the tail is dropped)."""
    n = (stream.numel() - 1) // T
    return torch.stack([stream[i * T:i * T + T + 1] for i in range(n)])


def add_arguments(ap, steps, seq_len, lr, warmup):
    """The model shape, schedule, penalty and log options both trainers take (with their own
    defaults for the four that differ)."""
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=seq_len)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--ffn", type=int, default=512)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--max-pos", type=int, default=256)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--init-std", type=float, default=0.02)
    ap.add_argument("--l1", type=float, default=0.5, help="final L1 penalty weight")
    ap.add_argument("--l1-start", type=float, default=0.1, help="ramp start (fraction of steps)")
    ap.add_argument("--l1-ramp", type=float, default=0.4, help="ramp length (fraction of steps)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--log-batch", type=int, default=16, help="held-out windows for the log")


class Corpus:
    """The split a training script uses: fortunes, train / held-out fortunes and streams, the
    held-out windows (the first eval_windows of them when given), the fixed log batch."""

    def __init__(self, a, eval_windows=0):
        self.fortunes = load_fortunes()
        self.train, self.val = split_corpus(self.fortunes, a.seed)
        self.train_stream, self.val_stream = to_stream(self.train), to_stream(self.val)
        self.windows = val_windows(self.val_stream, a.seq_len)
        if eval_windows:
            self.windows = self.windows[:eval_windows]
        g = torch.Generator().manual_seed(a.seed + 2)
        self.log_windows = self.windows[torch.randperm(self.windows.shape[0],
                                                       generator=g)[:a.log_batch]]

    def train_windows(self, a):
        """As many random training windows as held-out ones (seeded), for the train loss."""
        g = torch.Generator().manual_seed(a.seed + 3)
        off = torch.randint(0, self.train_stream.numel() - a.seq_len - 1,
                            (self.windows.shape[0],), generator=g)
        return self.train_stream[off[:, None] + torch.arange(a.seq_len + 1)]

    def info(self):
        """The corpus numbers the model cards print."""
        return dict(n_files=len(corpus_files()), n_fortunes=len(self.fortunes),
                    n_train=len(self.train), n_val=len(self.val),
                    train_bytes=self.train_stream.numel(), val_bytes=self.val_stream.numel(),
                    val_windows=self.windows.shape[0])


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def lr_at(step, a):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    t = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def l1_at(step, a):
    """Weight of the L1 penalty: 0 until l1_start, then a linear ramp to l1 over l1_ramp."""
    s0 = int(a.l1_start * a.steps)
    ramp = max(1, int(a.l1_ramp * a.steps))
    if step < s0:
        return 0.0
    return a.l1 * min(1.0, (step - s0 + 1) / ramp)


def sparsity_penalty(pres, a):
    """mean over layers of mean(relu(pre)) (ProSparse-style L1 on the activations)."""
    return sum(torch.relu(p).mean() for p in pres) / len(pres)


@torch.no_grad()
def evaluate(model, windows, bs=16):
    """windows: [N, T+1] token windows.  Returns loss (nats/byte), per-layer active fraction
    (mean over tokens of count(pre > 0) / F), per-layer never-fired count, tokens."""
    model.eval()
    tot, n = 0.0, 0
    act, fired = None, None
    for i in range(0, windows.shape[0], bs):
        w = windows[i:i + bs]
        logits, pres = model(w[:, :-1])
        tot += F.cross_entropy(logits.reshape(-1, VOCAB), w[:, 1:].reshape(-1),
                               reduction="sum").item()
        n += w[:, 1:].numel()
        on = [(p > 0) for p in pres]
        a_ = [o.sum().item() for o in on]
        f_ = [o.reshape(-1, o.shape[-1]).any(dim=0) for o in on]
        act = a_ if act is None else [x + y for x, y in zip(act, a_)]
        fired = f_ if fired is None else [x | y for x, y in zip(fired, f_)]
    model.train()
    Fdim = fired[0].numel()
    return (tot / n, [x / (n * Fdim) for x in act],
            [int((~f).sum().item()) for f in fired], n)


def train(a, tag, use_l1, train_stream, log_windows, log_rows, make_model, decays):
    """One run: make_model(a) after seeding (so both runs start from the same weights), AdamW
    with weight decay on the parameters decays(name, p) selects, the same data order for
    every run.  Appends a row to log_rows every a.log_every steps.  Returns the model and
    the seconds it took."""
    torch.manual_seed(a.seed)
    model = make_model(a)
    decay = [p for n_, p in model.named_parameters() if decays(n_, p)]
    no_decay = [p for n_, p in model.named_parameters() if not decays(n_, p)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(a.seed + 1)   # identical data order for both runs
    T, B = a.seq_len, a.batch
    hi = train_stream.numel() - T - 1
    ar = torch.arange(T + 1)
    t0 = time.time()
    run_loss, run_n = 0.0, 0
    for step in range(a.steps + 1):
        if step % a.log_every == 0 or step == a.steps:
            vl, af, dead, _ = evaluate(model, log_windows)
            row = dict(run=tag, step=step, train_loss=(run_loss / run_n if run_n else float("nan")),
                       heldout_loss=vl, l1_weight=(l1_at(step, a) if use_l1 else 0.0),
                       lr=lr_at(min(step, a.steps - 1), a), seconds=time.time() - t0)
            for i, x in enumerate(af):
                row["active_l%d" % i] = x
            for i, x in enumerate(dead):
                row["dead_l%d" % i] = x
            row["active_mean"] = sum(af) / len(af)
            log_rows.append(row)
            print("[%s] step %5d  train %.4f  held-out %.4f  active %s mean %.4f  dead %s"
                  "  l1w %.3g  %.0fs" % (tag, step, row["train_loss"], vl,
                                         " ".join("%.3f" % x for x in af), row["active_mean"],
                                         dead, row["l1_weight"], row["seconds"]), flush=True)
            run_loss, run_n = 0.0, 0
        if step == a.steps:
            break
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, a)
        off = torch.randint(0, hi, (B,), generator=g)
        w = train_stream[off[:, None] + ar]
        logits, pres = model(w[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), w[:, 1:].reshape(-1))
        total = loss
        if use_l1:
            lam = l1_at(step, a)
            if lam > 0:
                total = loss + lam * sparsity_penalty(pres, a)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        run_loss += loss.item()
        run_n += 1
    return model, time.time() - t0


def final_numbers(model, windows, train_windows):
    """The card's numbers of a trained model: held-out loss, per-layer active fraction,
    never-fired counts and tokens; train loss and activity on train_windows."""
    vl, af, dead, n = evaluate(model, windows)
    tl, taf, tdead, _ = evaluate(model, train_windows)
    return dict(heldout_loss=vl, active=af, dead=dead, heldout_tokens=n, train_loss=tl,
                train_active=taf, train_dead=tdead)


# --------------------------------------------------------------------------------------------
# The training log
# --------------------------------------------------------------------------------------------


def fmt_pct(x):
    return "%.1f %%" % (100 * x)


def write_csv(path, rows, written):
    keys = [k for k in rows[0] if k != "seconds"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(keys)
        for r in rows:
            w.writerow([("" if math.isnan(r[k]) else "%.6g" % r[k]) if isinstance(r[k], float)
                        else r[k] for k in keys])
    written.append((path, os.path.getsize(path)))


def plot_density(path, rows, L, written, ylabel):
    """density.png: per-layer density (log scale; sparse solid, baseline dashed) and the
    held-out loss with the L1 weight; ylabel names what counts as active."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for tag, ls in (("sparse", "-"), ("baseline", "--")):
        rr = [r for r in rows if r["run"] == tag]
        if not rr:
            continue
        steps = [r["step"] for r in rr]
        for i in range(L):
            ax1.plot(steps, [100 * r["active_l%d" % i] for r in rr], ls, color=colors[i],
                     label="%s layer %d" % (tag, i))
        ax1.plot(steps, [100 * r["active_mean"] for r in rr], ls, color="k", lw=2,
                 label="%s mean" % tag)
        ax2.plot(steps, [r["heldout_loss"] / math.log(2) for r in rr], ls, color="k",
                 label="%s held-out" % tag)
    ax1.axhline(10, color="grey", lw=0.8, ls=":")
    ax1.set_yscale("log")
    ax1.set_xlabel("step")
    ax1.set_ylabel(ylabel)
    ax1.set_title("MLP density on a fixed held-out batch")
    ax1.legend(fontsize=7, ncol=2)
    rs = [r for r in rows if r["run"] == "sparse"]
    if rs:
        ax3 = ax2.twinx()
        ax3.plot([r["step"] for r in rs], [r["l1_weight"] for r in rs], color="tab:red", lw=1)
        ax3.set_ylabel("L1 penalty weight (sparse run)", color="tab:red")
    ax2.set_ylim(top=min(8.0, max(r["heldout_loss"] / math.log(2) for r in rows)))
    ax2.set_xlabel("step")
    ax2.set_ylabel("held-out loss (bits per byte)")
    ax2.set_title("held-out loss")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
    written.append((path, os.path.getsize(path)))
