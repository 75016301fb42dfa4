"""Tests of the binding's calls on many sequences and on a sequence's state:
forward_batch, forward_ragged, truncate, copy_prefix, save_state / load_state,
and the chat templates. Logits are checked against the committed PyTorch
fixtures (each row of a step against the reference's row at that position).

    LAZYNEURON_LIB=build/liblazyneuron.so.0 /usr/bin/python3 -m pytest -q python/tests
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
REPO = PYTHON_DIR.parent
DATA = REPO / "tests" / "data"
sys.path.insert(0, str(PYTHON_DIR))

import lazyneuron as lzn  # noqa: E402

# An OPT, a LLaMA with GQA and one with a SiLU (dense) MLP: the three forward paths.
NAMES = ["opt-preln", "llama-gqa", "llama-silu"]
MODES = ["sparse", "dense", "auto"]

_models = {}


def model(name):
    if name not in _models:
        _models[name] = lzn.Model(DATA / name)
    return _models[name]


def reference(name):
    ref = json.loads((DATA / name / "reference.json").read_text())
    logits = np.fromfile(DATA / name / ref["logits_file"], dtype="<f4").reshape(ref["n_tokens"], ref["vocab_size"])
    return ref["tokens"], logits, 1e-4 * float(np.abs(logits).max())


def assert_close(got, want, tol, what):
    err = float(np.abs(got.astype(np.float64) - want).max())
    assert err <= tol, f"{what}: max |diff| {err:.3g} > {tol:.3g}"


def contexts_at(m, mode, prefixes):
    """One f32-cache context per token list, each having run its list."""
    ctxs = [m.context(kv_type="f32", mlp_mode=mode) for _ in prefixes]
    for c, prefix in zip(ctxs, prefixes):
        if prefix:
            c.forward(prefix)
    return ctxs


def assert_rows(got, ref, tol, positions, what):
    """Row i of a step's logits is the reference's at positions[i]."""
    assert got.shape == (len(positions), ref.shape[1]) and got.dtype == np.float32
    for row, pos in enumerate(positions):
        assert_close(got[row], ref[pos], tol, f"{what} row {row} (position {pos})")


def error_status(excinfo):
    return excinfo.value.status_name


# ------------------------------------------------------------ forward_batch


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_forward_batch_matches_reference(name, mode):
    """Three sequences at positions 2, 4 and 0 take one step together."""
    tokens, ref, tol = reference(name)
    ctxs = contexts_at(model(name), mode, [tokens[:2], tokens[:4], []])
    got = lzn.forward_batch(ctxs, [tokens[2], tokens[4], tokens[0]])
    assert_rows(got, ref, tol, [2, 4, 0], f"{name} {mode} batch")
    assert [c.n_past for c in ctxs] == [3, 5, 1]
    # A second step on the same caches (numpy array of tokens this time).
    got = lzn.forward_batch(ctxs, np.array([tokens[3], tokens[5], tokens[1]], dtype=np.int64))
    assert_rows(got, ref, tol, [3, 5, 1], f"{name} {mode} second step")
    for c in ctxs:
        c.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_forward_ragged_matches_reference(name, mode):
    """A prompt from 0, one decoded token, and a prompt's chunk at position 1."""
    tokens, ref, tol = reference(name)
    ctxs = contexts_at(model(name), mode, [[], tokens[:2], tokens[:1]])
    got = lzn.forward_ragged(ctxs, [tokens[:3], [tokens[2]], np.array(tokens[1:5])])
    assert_rows(got, ref, tol, [2, 2, 4], f"{name} {mode} ragged")
    assert [c.n_past for c in ctxs] == [3, 3, 5]
    # The caches hold every row's keys and values: a batched step after it.
    got = lzn.forward_batch(ctxs, [tokens[3], tokens[3], tokens[5]])
    assert_rows(got, ref, tol, [3, 3, 5], f"{name} {mode} step after ragged")
    for c in ctxs:
        c.close()


def test_batch_bad_input_changes_nothing():
    tokens, _, _ = reference("opt-preln")
    m, other = model("opt-preln"), model("llama-gqa")
    a, b = m.context(), m.context()
    a.forward(tokens[:2])

    def unchanged():
        assert (a.n_past, b.n_past) == (2, 0)

    with pytest.raises(ValueError, match="one token per context"):
        lzn.forward_batch([a, b], [1])
    with pytest.raises(TypeError):
        lzn.forward_batch(a, [1])
    with pytest.raises(TypeError, match=r"contexts\[1\]"):
        lzn.forward_batch([a, "b"], [1, 2])
    with pytest.raises(TypeError):
        lzn.forward_batch([a, b], [1, 2.5])
    with pytest.raises(lzn.LazyNeuronError) as e:
        lzn.forward_batch([], [])
    assert error_status(e) == "LZN_ERR_INVALID_ARG"
    with pytest.raises(lzn.LazyNeuronError, match="same context") as e:
        lzn.forward_batch([a, a], [1, 2])
    assert error_status(e) == "LZN_ERR_INVALID_ARG"
    unchanged()
    with pytest.raises(lzn.LazyNeuronError) as e:
        lzn.forward_batch([a, b], [1, m.info.vocab_size])
    assert error_status(e) == "LZN_ERR_INVALID_ARG" and "1" in e.value.message
    unchanged()
    with other.context() as c:
        with pytest.raises(lzn.LazyNeuronError) as e:
            lzn.forward_batch([a, c], [1, 2])
        assert error_status(e) == "LZN_ERR_INVALID_ARG"
        assert c.n_past == 0
    unchanged()
    # A full context stops the whole step before any work.
    with m.context(n_ctx=2) as full:
        full.forward(tokens[:2])
        with pytest.raises(lzn.LazyNeuronError) as e:
            lzn.forward_batch([b, full], [1, 2])
        assert error_status(e) == "LZN_ERR_CONTEXT_FULL"
        assert full.n_past == 2
        with pytest.raises(lzn.LazyNeuronError) as e:
            lzn.forward_ragged([full, b], [[1], [2, 3]])
        assert error_status(e) == "LZN_ERR_CONTEXT_FULL"
    unchanged()
    # Ragged: an empty sequence, a flat list of ints, a count mismatch.
    with pytest.raises(lzn.LazyNeuronError) as e:
        lzn.forward_ragged([a, b], [[1], []])
    assert error_status(e) == "LZN_ERR_INVALID_ARG"
    with pytest.raises(TypeError):
        lzn.forward_ragged([a, b], [1, 2])
    with pytest.raises(TypeError):
        lzn.forward_ragged([a, b], np.array([[1], [2]]))
    with pytest.raises(ValueError, match="2 contexts"):
        lzn.forward_ragged([a, b], [[1]])
    unchanged()
    b.close()
    with pytest.raises(ValueError, match="closed"):
        lzn.forward_batch([a, b], [1, 2])
    assert a.n_past == 2
    a.close()


# -------------------------------------------------- truncate and copy_prefix


@pytest.mark.parametrize("name", NAMES)
def test_truncate_and_copy_prefix_continue_the_sequence(name):
    tokens, ref, tol = reference(name)
    m = model(name)
    with m.context(kv_type="f32") as ctx, m.context(kv_type="f32") as copy:
        ctx.forward(tokens[:6])
        ctx.truncate(2)
        assert ctx.n_past == 2
        assert_close(ctx.forward(tokens[2:4]), ref[3], tol, f"{name} after truncate")
        copy.forward(tokens[7:9])  # replaced by the copy
        copy.copy_prefix(ctx, 3)
        assert copy.n_past == 3
        assert_close(copy.forward([tokens[3]]), ref[3], tol, f"{name} after copy_prefix")
        assert ctx.n_past == 4  # the source is untouched
        assert ctx.kv_bytes > 0 and ctx.kv_bytes == copy.kv_bytes
        for bad in (-1, 5):
            with pytest.raises(lzn.LazyNeuronError) as e:
                ctx.truncate(bad)
            assert error_status(e) == "LZN_ERR_INVALID_ARG"
            with pytest.raises(lzn.LazyNeuronError) as e:
                copy.copy_prefix(ctx, bad)
            assert error_status(e) == "LZN_ERR_INVALID_ARG"
        assert (ctx.n_past, copy.n_past) == (4, 4)
        with pytest.raises(lzn.LazyNeuronError) as e:
            copy.copy_prefix(copy, 1)
        assert error_status(e) == "LZN_ERR_INVALID_ARG"
        with pytest.raises(TypeError):
            copy.copy_prefix("ctx", 1)
        with m.context(kv_type="f16") as f16, pytest.raises(lzn.LazyNeuronError) as e:
            f16.copy_prefix(ctx, 1)
        assert error_status(e) == "LZN_ERR_INVALID_ARG"


# ----------------------------------------------------------------- state


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trip(name):
    tokens, ref, tol = reference(name)
    m = model(name)
    with m.context(kv_type="f32") as ctx, m.context(kv_type="f32") as other:
        ctx.forward(tokens[:4])
        state = ctx.save_state()
        assert isinstance(state, bytes) and len(state) > 0
        other.forward(tokens[:1])
        other.load_state(state)
        assert other.n_past == 4
        assert_close(other.forward([tokens[4]]), ref[4], tol, f"{name} after load_state")
        other.load_state(bytearray(state))  # any bytes-like object
        assert other.n_past == 4
        damaged = bytearray(state)
        damaged[len(damaged) // 2] ^= 0x40
        for bad in (bytes(damaged), state[:-1], b"", b"not a state"):
            with pytest.raises(lzn.LazyNeuronError) as e:
                other.load_state(bad)
            assert error_status(e) == "LZN_ERR_FORMAT"
            assert other.n_past == 4
        with m.context(kv_type="f16") as f16, pytest.raises(lzn.LazyNeuronError) as e:
            f16.load_state(state)
        assert error_status(e) == "LZN_ERR_INVALID_ARG"
        with pytest.raises(TypeError):
            other.load_state("text")
    # Another model's shape is named.
    other_name = "llama-gqa" if name != "llama-gqa" else "opt-preln"
    with model(other_name).context(kv_type="f32") as c, pytest.raises(lzn.LazyNeuronError) as e:
        c.load_state(state)
    assert error_status(e) == "LZN_ERR_INVALID_ARG"


# ------------------------------------------------------------------ chat

CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "2+2?"}]
CHATML = ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
          "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
          "<|im_start|>assistant\n")
LLAMA3 = ("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_chat_templates():
    assert lzn.apply_chat_template(None, CONVERSATION) == CHATML
    assert lzn.apply_chat_template("chatml", [(m["role"], m["content"]) for m in CONVERSATION]) == CHATML
    assert lzn.apply_chat_template("chatml", CONVERSATION, add_assistant=False) == \
        CHATML[:-len("<|im_start|>assistant\n")]
    assert lzn.apply_chat_template("llama3", CONVERSATION[1:2]) == LLAMA3
    assert lzn.chat_template_name(None) == "chatml"
    assert lzn.chat_template_name("{{ '<|start_header_id|>' + r + '<|end_header_id|>' }}") == "llama3"
    assert lzn.chat_template_name("{{ messages | tojson }}") is None
    with pytest.raises(lzn.LazyNeuronError) as e:
        lzn.apply_chat_template("{{ messages | tojson }}", CONVERSATION)
    assert error_status(e) == "LZN_ERR_UNSUPPORTED"
    with pytest.raises(lzn.LazyNeuronError, match=r"1") as e:
        lzn.apply_chat_template(None, [CONVERSATION[0], {"role": "robot", "content": "x"}])
    assert error_status(e) == "LZN_ERR_INVALID_ARG"
    with pytest.raises(ValueError, match="NUL"):
        lzn.apply_chat_template(None, [{"role": "user", "content": "a\0b"}])
    with pytest.raises(ValueError):
        lzn.apply_chat_template(None, [{"role": "user"}])
    with pytest.raises(ValueError):
        lzn.apply_chat_template(None, [{"role": "user", "content": "\ud800"}])
    with pytest.raises(TypeError):
        lzn.apply_chat_template(None, [{"role": "user", "content": 3}])
    with pytest.raises(TypeError):
        lzn.apply_chat_template(None, "Hi")
    # Non-ASCII text goes through as UTF-8.
    assert "héllo ✓" in lzn.apply_chat_template(None, [{"role": "user", "content": "héllo ✓"}])


def test_model_chat_template(tmp_path):
    """A model's own template comes from its tokenizer_config.json; a model
    without one renders ChatML."""
    with lzn.Model(REPO / "models" / "tiny-llama") as plain:
        assert plain.chat_template is None
        assert plain.apply_chat_template(CONVERSATION) == CHATML
    folder = tmp_path / "with-template"
    folder.mkdir()
    for f in (REPO / "models" / "tiny-llama").iterdir():
        if f.name in ("config.json", "model.safetensors", "lazyneuron_tokenizer.json"):
            (folder / f.name).symlink_to(f)
    text = "{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>' }}{% endfor %}"
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": text}))
    with lzn.Model(folder) as m:
        assert m.chat_template == text
        assert m.apply_chat_template(CONVERSATION[1:2]) == LLAMA3
        assert m.apply_chat_template(CONVERSATION, template="chatml") == CHATML


def test_readme_example_runs():
    """python/README.md's example of these calls runs as written."""
    text = (PYTHON_DIR / "README.md").read_text()
    section = text[text.index("## Many sequences"):]
    block = section[section.index("```python\n") + len("```python\n"):section.index("```\n", section.index("```python"))]
    cwd = os.getcwd()
    os.chdir(REPO)  # the example's paths are the repository's
    try:
        scope = {"lzn": lzn}
        exec(compile(block, "python/README.md", "exec"), scope)  # noqa: S102
    finally:
        os.chdir(cwd)
    assert scope["logits"].shape == (2, scope["model"].info.vocab_size)
    assert scope["prompt"].startswith("<|im_start|>user\nHi")


# ---------------------------------------------------------------- sampler


def test_sampler_picks_and_repeats():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(20, 97)).astype(np.float32)
    with lzn.Sampler(97, temperature=0) as greedy:
        assert [greedy.sample(row) for row in logits] == [int(row.argmax()) for row in logits]
    with lzn.Sampler(97, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=7) as s:
        first = [s.sample(row) for row in logits]
        s.reset()
        assert [s.sample(row) for row in logits] == first  # the same seed, the same picks
        s.reset(8)
        assert [s.sample(row) for row in logits] != first
        assert len(set(first)) > 1  # it samples, not argmax
    # top_k = 1 is greedy at any temperature.
    with lzn.Sampler(97, temperature=5.0, top_k=1, seed=1) as s:
        assert [s.sample(row) for row in logits] == [int(row.argmax()) for row in logits]
    # NaN and -inf are never picked.
    row = np.full(97, -np.inf, dtype=np.float32)
    row[5], row[6] = np.nan, 1.0
    with lzn.Sampler(97, temperature=1.0, seed=2) as s:
        assert all(s.sample(row) == 6 for _ in range(10))


def test_sampler_bad_input():
    with pytest.raises(lzn.LazyNeuronError, match="temperature") as e:
        lzn.Sampler(10, temperature=-1)
    assert error_status(e) == "LZN_ERR_INVALID_ARG"
    with pytest.raises(lzn.LazyNeuronError) as e:
        lzn.Sampler(0)
    assert error_status(e) == "LZN_ERR_INVALID_ARG"
    with pytest.raises(ValueError, match="seed"):
        lzn.Sampler(10, seed=-1)
    with pytest.raises(TypeError):
        lzn.Sampler(10, top_k=1.5)
    s = lzn.Sampler(10)
    with pytest.raises(ValueError, match=r"\(10,\)"):
        s.sample(np.zeros(9, dtype=np.float32))  # never read past the array
    with pytest.raises(ValueError):
        s.sample(np.zeros((2, 10), dtype=np.float32))
    with pytest.raises(lzn.LazyNeuronError) as e:
        s.sample(np.full(10, np.nan, dtype=np.float32))
    assert error_status(e) == "LZN_ERR_INVALID_ARG"
    with pytest.raises(lzn.LazyNeuronError) as e:
        s.accept(10)
    assert error_status(e) == "LZN_ERR_INVALID_ARG"
    assert 0 <= s.sample(np.arange(10, dtype=np.float64)) < 10  # any float dtype is converted
    s.close()
    with pytest.raises(ValueError, match="closed"):
        s.sample(np.zeros(10, dtype=np.float32))


def test_batched_generation_equals_each_alone():
    """Greedy decoding of two prompts through forward_batch and a Sampler
    each gives the text generate() gives for each prompt alone."""
    prompts = ["The meaning of life is", "Once upon a time"]
    with lzn.Model(REPO / "models" / "tiny-llama") as m:
        alone = []
        for p in prompts:
            with m.context() as c:
                alone.append("".join(c.generate(p, 24, temperature=0)))
        ctxs = [m.context() for _ in prompts]
        samplers = [lzn.Sampler(m.info.vocab_size, temperature=0) for _ in prompts]
        logits = lzn.forward_ragged(ctxs, [m.tokenize(p) for p in prompts])
        out = [[] for _ in prompts]
        for step in range(24):
            tokens = [s.sample(row) for s, row in zip(samplers, logits)]
            for o, t in zip(out, tokens):
                o.append(t)
            if step + 1 < 24:
                logits = lzn.forward_batch(ctxs, tokens)
        eos = m.tokenizer_info.eos_id
        for i, o in enumerate(out):
            if eos in o:
                o = o[:o.index(eos)]
            assert m.detokenize(o) == alone[i], f"prompt {i}"
        for c in ctxs:
            c.close()
