"""Tests of the ctypes binding against the committed PyTorch fixtures.

    LAZYNEURON_LIB=build/liblazyneuron.so.0 /usr/bin/python3 -m pytest -q python/tests
"""

import ctypes
import gc
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
REPO = PYTHON_DIR.parent
DATA = REPO / "tests" / "data"
sys.path.insert(0, str(PYTHON_DIR))

import lazyneuron as lzn  # noqa: E402
from lazyneuron import _lib  # noqa: E402

# The Hugging Face folders (a config.json); the GGUF-only fixtures (llama-kquant*) are
# tested in C (tests/test_kquants.c).
FIXTURES = sorted(p.name for p in DATA.iterdir() if (p / "reference.json").is_file() and (p / "config.json").is_file())
MODES = ["sparse", "dense", "auto"]


class Fixture:
    def __init__(self, name):
        self.name = name
        self.path = DATA / name
        self.ref = json.loads((self.path / "reference.json").read_text())
        self.tokens = self.ref["tokens"]
        n, vocab = self.ref["n_tokens"], self.ref["vocab_size"]
        self.logits = np.fromfile(self.path / self.ref["logits_file"], dtype="<f4").reshape(n, vocab)
        self.tol = 1e-4 * float(np.abs(self.logits).max())


_fixtures = {}
_models = {}


def fixture(name):
    if name not in _fixtures:
        _fixtures[name] = Fixture(name)
    return _fixtures[name]


def model(name):
    """One loaded Model per fixture, shared by the tests (models are read-only)."""
    if name not in _models:
        _models[name] = lzn.Model(DATA / name)
    return _models[name]


def assert_close(got, want, tol, what):
    err = float(np.abs(got.astype(np.float64) - want).max())
    assert err <= tol, f"{what}: max |diff| {err:.3g} > {tol:.3g}"


# ------------------------------------------------------------------ logits


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", FIXTURES)
def test_logits_match_reference(name, mode):
    fx, m = fixture(name), model(name)
    assert m.info.vocab_size == fx.ref["vocab_size"]
    with m.context(kv_type="f32", mlp_mode=mode) as ctx:
        got = ctx.forward(fx.tokens, all_logits=True)
        assert got.dtype == np.float32 and got.shape == fx.logits.shape
        assert got.flags.c_contiguous
        assert_close(got, fx.logits, fx.tol, f"{name} {mode} all positions")
        assert ctx.n_past == len(fx.tokens)
        ctx.reset()
        assert ctx.n_past == 0
        last = ctx.forward(np.array(fx.tokens, dtype=np.int64))
        assert last.shape == (fx.ref["vocab_size"],)
        assert_close(last, fx.logits[-1], fx.tol, f"{name} {mode} last position")
        assert int(last.argmax()) == fx.ref["argmax"][-1]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", FIXTURES)
def test_decode_equals_prefill(name, mode):
    fx, m = fixture(name), model(name)
    n = len(fx.tokens)
    with m.context(kv_type="f32", mlp_mode=mode) as prefill_ctx:
        prefill = prefill_ctx.forward(fx.tokens, all_logits=True)
    with m.context(kv_type="f32", mlp_mode=mode, n_threads=2) as ctx:
        half = n // 2
        rows = [ctx.forward(fx.tokens[:half], all_logits=True)]
        for t in fx.tokens[half:]:
            rows.append(ctx.forward([t])[None, :])
            assert ctx.n_past == half + sum(r.shape[0] for r in rows[1:])
        decoded = np.concatenate(rows)
    assert_close(decoded, prefill, fx.tol, f"{name} {mode} decode vs prefill")
    assert_close(decoded, fx.logits, fx.tol, f"{name} {mode} decode vs reference")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", FIXTURES)
def test_stats_match_reference(name, mode):
    fx, m = fixture(name), model(name)
    n = len(fx.tokens)
    with m.context(kv_type="f32", mlp_mode=mode) as ctx:
        ctx.forward(fx.tokens[:3])
        ctx.forward(fx.tokens[3:])
        stats = ctx.stats()
        assert len(stats) == m.info.n_layers == len(fx.ref["active_fraction"])
        for layer, s in enumerate(stats):
            assert set(s) == {f for f, _ in _lib.LayerStats._fields_} - {"struct_size"}
            assert s["tokens"] == n
            assert abs(s["active_fraction"] - fx.ref["active_fraction"][layer]) <= 1e-5
            assert s["never_fired"] == fx.ref["never_fired"][layer]
            # The matrices the active set applies to: W_down, or W_up and W_down (gated).
            matrices = 2 if m.info.gated else 1
            assert s["flops_dense"] == pytest.approx(2.0 * matrices * m.info.d_model * m.info.d_ff * n)
            assert s["sparse_calls"] + s["dense_calls"] == 2
            silu = fx.ref.get("activation") == "silu"  # SwiGLU without a threshold runs dense
            drelu = fx.ref.get("activation") == "drelu"  # up rows of the gate's set, down rows of both
            if mode == "sparse" and not silu:
                assert s["dense_calls"] == 0
                ratio = s["flops_executed"] / s["flops_dense"]
                # Each call is a batch: the union of its tokens' rows, read once and
                # multiplied for all of them, so at least the per-token FLOPs.
                assert s["active_fraction"] - 1e-12 <= ratio <= 1.0
                # A call of many tokens may read each token's own rows instead of
                # their union (issue 20, when cheaper): then more bytes than one dense
                # pass, but never more than each token reading every row.
                assert 0 < s["bytes_executed"] <= n * s["bytes_dense"]
            elif mode == "dense" or silu:
                assert s["sparse_calls"] == 0
                assert s["flops_executed"] == pytest.approx(s["flops_dense"])
        ctx.reset()
        assert all(s["tokens"] == 0 and s["sparse_calls"] == s["dense_calls"] == 0
                   for s in ctx.stats())


def test_stats_off_counts_nothing():
    with model("opt-preln").context(kv_type="f32", mlp_mode="sparse", collect_stats=False) as ctx:
        ctx.forward([2, 3, 4])
        assert all(s["tokens"] == 0 for s in ctx.stats())


def test_load_without_mmap_and_with_progress():
    fx = fixture("opt-sharded")
    fractions = []
    with lzn.Model(fx.path, use_mmap=False, progress=fractions.append) as m:
        with m.context(kv_type="f32") as ctx:
            assert_close(ctx.forward(fx.tokens), fx.logits[-1], fx.tol, "no mmap")
    assert fractions and all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions)


def test_progress_cancel_and_exception():
    path = DATA / "opt-preln"
    with pytest.raises(lzn.LazyNeuronError) as e:
        lzn.Model(path, progress=lambda f: False)
    assert e.value.status_name == "LZN_ERR_CANCELLED"

    def boom(fraction):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        lzn.Model(path, progress=boom)


def test_threads_share_a_model():
    fx, m = fixture("opt-sparse"), model("opt-sparse")
    results, errors = {}, []

    def work(i):
        try:
            with m.context(kv_type="f32", mlp_mode=MODES[i % 3]) as ctx:
                for _ in range(5):
                    ctx.reset()
                    results[i] = ctx.forward(fx.tokens, all_logits=True)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got in results.values():
        assert_close(got, fx.logits, fx.tol, "threaded")


# -------------------------------------------------------------- token input


def test_token_inputs():
    fx, m = fixture("opt-preln"), model("opt-preln")
    toks = fx.tokens
    with m.context(kv_type="f32") as ctx:
        want = ctx.forward(toks)
        for form in (tuple(toks), np.array(toks, dtype=np.int32), np.array(toks, dtype=np.uint16),
                     np.repeat(np.array(toks, dtype=np.int64), 2)[::2], [np.int64(t) for t in toks]):
            ctx.reset()
            np.testing.assert_array_equal(ctx.forward(form), want)
        for bad in ([1.0, 2.0], np.array(toks, dtype=np.float32), "abc", [True], 7, [None]):
            with pytest.raises(TypeError):
                ctx.forward(bad)
        with pytest.raises(ValueError):
            ctx.forward(np.array([[1, 2]]))
        with pytest.raises(ValueError):
            ctx.forward([2**40])
        assert ctx.n_past == len(toks)


# ------------------------------------------------------------------ errors


def test_missing_path_is_io_error():
    with pytest.raises(lzn.LazyNeuronError) as e:
        lzn.Model(DATA / "no-such-model")
    err = e.value
    assert isinstance(err, RuntimeError)
    assert err.status_name == "LZN_ERR_IO" and err.status == 2 == lzn.Status.LZN_ERR_IO
    assert "no-such-model" in err.message
    assert str(err).startswith("LZN_ERR_IO: ")


def test_bad_token_id_is_invalid_arg():
    m = model("opt-preln")
    with m.context(kv_type="f32") as ctx:
        ctx.forward([2, 3])
        for bad in ([m.info.vocab_size], [5, -1]):
            with pytest.raises(lzn.LazyNeuronError) as e:
                ctx.forward(bad)
            assert e.value.status_name == "LZN_ERR_INVALID_ARG"
            assert e.value.status == 1
            assert "vocabulary" in e.value.message
            assert ctx.n_past == 2
        with pytest.raises(lzn.LazyNeuronError) as e:
            ctx.forward([])
        assert e.value.status_name == "LZN_ERR_INVALID_ARG"
        assert ctx.n_past == 2


def test_context_full_keeps_n_past():
    fx, m = fixture("opt-preln"), model("opt-preln")
    with m.context(kv_type="f32", n_ctx=4) as ctx:
        ctx.forward(fx.tokens[:3])
        with pytest.raises(lzn.LazyNeuronError) as e:
            ctx.forward(fx.tokens[3:5])
        assert e.value.status_name == "LZN_ERR_CONTEXT_FULL"
        assert e.value.status == 6
        assert ctx.n_past == 3
        # The cache is as it was: the next token still gives the reference logits.
        assert_close(ctx.forward(fx.tokens[3:4]), fx.logits[3], fx.tol, "after CONTEXT_FULL")
        assert ctx.n_past == 4


def test_bad_context_params():
    m = model("opt-preln")
    lib = _lib.load()
    with pytest.raises(lzn.LazyNeuronError):
        lzn.Model(DATA / "no-such-model")  # leaves a known last error
    before = lib.lzn_last_error()
    for bad in ("bogus", "SPARSE", 1, None):
        with pytest.raises(ValueError):
            m.context(kv_type="f32", mlp_mode=bad)
    assert lib.lzn_last_error() == before  # the C library was never called
    assert m._n_contexts == 0
    for kwargs, word in (({"n_threads": 0}, "n_threads"), ({"n_ctx": -1}, "n_ctx"),
                         ({"n_ctx": m.info.max_positions + 1}, "n_ctx"),
                         ({"auto_crossover": 2.0}, "auto_crossover")):
        with pytest.raises(lzn.LazyNeuronError) as e:
            m.context(kv_type="f32", **kwargs)
        assert e.value.status_name == "LZN_ERR_INVALID_ARG" and word in e.value.message
    with pytest.raises(ValueError):
        m.context(kv_type="f32", n_threads=2**40)
    assert m._n_contexts == 0


# ---------------------------------------------------------------- lifetime


def test_context_manager_closes():
    path = DATA / "opt-preln"
    with lzn.Model(path) as m:
        with m.context(kv_type="f32") as ctx:
            ctx.forward([2, 5])
        assert ctx.closed
        with pytest.raises(ValueError):
            ctx.forward([2])
        with pytest.raises(ValueError):
            ctx.n_past  # noqa: B018
        ctx.close()  # twice is fine
    assert m.closed and m._handle is None
    with pytest.raises(ValueError):
        m.context(kv_type="f32")
    m.close()  # twice is fine


def test_contexts_keep_the_model_alive():
    fx = fixture("opt-preln")
    m = lzn.Model(fx.path)
    a, b = m.context(kv_type="f32"), m.context(kv_type="f32")
    m.close()
    assert m.closed and m._handle is not None  # still used by a and b
    a.close()
    assert m._handle is not None
    assert_close(b.forward(fx.tokens), fx.logits[-1], fx.tol, "closed model, open context")
    b.close()
    assert m._handle is None

    # Dropping every Python reference frees both, context first.
    c = lzn.Model(fx.path).context(kv_type="f32")
    del c
    gc.collect()


# ------------------------------------------------------------- module level


def test_version_and_isa():
    header = (REPO / "include" / "lazyneuron.h").read_text()
    parts = [re.search(rf"#define LZN_VERSION_{p} (\d+)", header).group(1)
             for p in ("MAJOR", "MINOR", "PATCH")]
    assert lzn.version() == ".".join(parts)
    assert re.fullmatch(r"\d+\.\d+\.\d+", lzn.version())
    major, minor, patch = map(int, parts)
    assert lzn.version_number() == major * 10000 + minor * 100 + patch
    assert lzn.isa() in {"avx512vnni", "avx512bf16", "avx512", "avxvnni", "avx2", "scalar"}
    if os.environ.get("LZN_ISA"):
        assert lzn.isa() == os.environ["LZN_ISA"]
    assert lzn.isa_supported("scalar") and lzn.isa_supported(lzn.isa())
    assert not lzn.isa_supported("no-such-isa")


def test_struct_layouts_match_the_header():
    lib = _lib.load()
    # lzn_model_params: the 0.4 struct through lzn_model_params_init (72
    # bytes: pack_budget, a size_t, at 56, n_threads at 64);
    # lzn_model_default_params keeps returning the 0.3 one (48 bytes) for
    # programs built against 0.3.
    p = _lib.ModelParams()
    assert lib.lzn_model_params_init(ctypes.byref(p), ctypes.sizeof(p)) == 0
    assert p.struct_size == ctypes.sizeof(_lib.ModelParams) == 72
    assert _lib.ModelParams.pack_budget.offset == 56
    assert _lib.ModelParams.n_threads.offset == 64
    assert _lib.ModelParams.predictor_type.offset == 68 and p.predictor_type == 0  # AS_STORED
    assert p.pack_budget == ctypes.c_size_t(-1).value and p.use_mmap == 1 and p.n_threads == 1
    assert lib.lzn_model_params_init(ctypes.byref(p), ctypes.sizeof(p) + 8) != 0  # a size it does not know
    assert lib.lzn_context_default_params().struct_size == ctypes.sizeof(_lib.ContextParams)
    # struct_size, 7 ints, the int64 weight_bytes at offset 40 (C's
    # alignment), 3 ints, the architecture pointer at 64. The library takes
    # an output struct only at a size it knows (get_info and stats below
    # would fail otherwise).
    assert _lib.ModelInfo.weight_bytes.offset == 40
    assert _lib.ModelInfo.architecture.offset == 64
    # 0.4: 16 int64 bytes by type at 80, packed_bytes at 208
    assert _lib.ModelInfo.packed_bytes.offset == 208
    assert ctypes.sizeof(_lib.ModelInfo) == 216
    assert ctypes.sizeof(_lib.LayerStats) == 15 * 8
    d = lib.lzn_context_default_params()
    assert (d.n_ctx, d.n_threads, d.mlp_mode, d.auto_crossover, d.collect_stats) == (0, 1, 0, 0.0, 1)
    for status in lzn.Status:
        assert lib.lzn_status_str(status).decode() == status.name


def test_pack_budget_and_the_bytes_by_type():
    """pack_budget 0 makes no packed copies; the default makes them where the
    CPU has the packed kernels (AVX512-VNNI), for Q8_0 weights; the bytes by
    type add up to weight_bytes; a negative budget is refused."""
    fx = fixture("opt-preln")
    with lzn.Model(fx.path, weight_type="q8_0", pack_budget=0) as m:
        assert m.info.packed_bytes == 0
        assert sum(m.info.weight_bytes_by_type.values()) == m.info.weight_bytes
        assert m.info.weight_bytes_by_type.get("q8_0", 0) > 0
        with m.context(kv_type="f32", mlp_mode="dense") as ctx:
            unpacked = ctx.forward(fx.tokens)
    with lzn.Model(fx.path, weight_type="q8_0") as m:
        if lzn.isa() == "avx512vnni":
            assert m.info.packed_bytes > 0
        else:
            assert m.info.packed_bytes == 0
        with m.context(kv_type="f32", mlp_mode="dense") as ctx:
            packed = ctx.forward(fx.tokens)
    # the same products on the copies: the same logits within Q8_0's rounding of x
    assert_close(packed, unpacked, 4e-2 * float(np.abs(unpacked).max()), "packed vs rows")
    with pytest.raises(ValueError):
        lzn.Model(fx.path, pack_budget=-1)


def test_predictor_type():
    """predictor_type converts the predictor's matrices at load (the C suite
    checks the bytes and the sets: tests/test_predictor.c). On this fixture
    F16 predicts the stored F32 predictor's sets (the same logits; measured
    equal) and Q8_0 moves a few neurons (measured 0.25 % of the logits'
    scale); a name that is no type is a ValueError."""
    path = DATA / "predictor" / "opt-preln"
    tokens = json.loads((path / "reference.json").read_text())["tokens"]
    out = {}
    for t in ("as_stored", "f16", "q8_0"):
        with lzn.Model(path, predictor_type=t) as m:
            assert m.info.has_predictor > 0
            with m.context(kv_type="f32", mlp_mode="sparse") as ctx:
                out[t] = ctx.forward(tokens)
    scale = float(np.abs(out["as_stored"]).max())
    assert_close(out["f16"], out["as_stored"], 1e-4 * scale, "f16 predictor")
    assert_close(out["q8_0"], out["as_stored"], 2e-2 * scale, "q8_0 predictor")
    with pytest.raises(ValueError):
        lzn.Model(path, predictor_type="q9")


def test_library_search_order(tmp_path):
    code = "import lazyneuron as l; print(l.library_path()); print(l.version())"
    env = dict(os.environ, LAZYNEURON_LIB=str(tmp_path / "missing.so"))
    r = subprocess.run([sys.executable, "-c", code], cwd=PYTHON_DIR, env=env,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "LAZYNEURON_LIB" in r.stderr and "missing.so" in r.stderr
    if "LAZYNEURON_LIB" in os.environ:
        env["LAZYNEURON_LIB"] = os.environ["LAZYNEURON_LIB"]
        r = subprocess.run([sys.executable, "-c", code], cwd=PYTHON_DIR, env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0] == os.environ["LAZYNEURON_LIB"]
