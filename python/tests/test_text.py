"""The binding's text API (tokenize, detokenize, Context.generate) and
lzn-run against it: the same seed gives the same text.

    LAZYNEURON_LIB=build/liblazyneuron.so.0 /usr/bin/python3 -m pytest -q python/tests
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
REPO = PYTHON_DIR.parent
TINY = REPO / "models" / "tiny-opt"
GPT2 = REPO / "tests" / "data" / "tokenizer" / "gpt2"
sys.path.insert(0, str(PYTHON_DIR))

import lazyneuron as lzn  # noqa: E402


def lzn_run():
    """build/lzn-run beside the library under test, built if missing."""
    lib = os.environ.get("LAZYNEURON_LIB")
    build = Path(lib).resolve().parent if lib else REPO / "build"
    exe = build / "lzn-run"
    rel = os.path.relpath(build, REPO)
    subprocess.run(["make", "--no-print-directory", "-s", f"BUILD={rel}", f"{rel}/lzn-run"],
                   cwd=REPO, check=True)
    assert exe.is_file()
    return exe


def test_tiny_opt_tokenizer():
    with lzn.Model(TINY) as model:
        info = model.tokenizer_info
        assert (info.kind, info.vocab_size, info.eos_id, info.bos_id) == ("byte-level", 256, 2, -1)
        assert model.tokenize("Hi\xe9") == [72, 105, 0xC3, 0xA9]
        assert model.tokenize(b"\xff\x00") == [255, 0]
        assert model.detokenize([72, 105]) == "Hi"
        assert model.detokenize_bytes([255]) == b"\xff"
        assert model.token_to_piece(2) == b"\x02"


def test_model_without_tokenizer():
    with lzn.Model(REPO / "tests" / "data" / "opt-preln") as model:
        with pytest.raises(lzn.LazyNeuronError) as e:
            model.tokenize("hello")
        assert e.value.status == lzn.Status.LZN_ERR_UNSUPPORTED
        assert "no tokenizer" in e.value.message


def test_detokenize_bad_id():
    with lzn.Model(TINY) as model:
        with pytest.raises(lzn.LazyNeuronError) as e:
            model.detokenize([65, 256])
        assert e.value.status == lzn.Status.LZN_ERR_INVALID_ARG


@pytest.mark.parametrize("mode", ["sparse", "dense"])
@pytest.mark.parametrize("seed,temp", [(4, 0.8), (7, 1.0), (1, 0.0)])
def test_lzn_run_matches_generate(mode, seed, temp):
    prompt = "The meaning of life is"
    with lzn.Model(TINY) as model, model.context(mlp_mode=mode) as ctx:
        pieces = list(ctx.generate(prompt, 48, temperature=temp, seed=seed))
    assert pieces, "nothing generated"
    out = subprocess.run([str(lzn_run()), "-m", str(TINY), "-p", prompt, "-n", "48",
                          "--temp", str(temp), "--seed", str(seed), "--mode", mode,
                          "--threads", "1"], capture_output=True, check=True)
    assert out.stdout.decode("utf-8", "replace") == prompt + "".join(pieces)
    assert b"t/s" in out.stderr and b"active" in out.stderr


def test_lzn_run_prompt_from_stdin_and_file(tmp_path):
    prompt = b"Q: Why did the chicken"
    args = [str(lzn_run()), "-m", str(TINY), "-n", "20", "--temp", "0"]
    from_stdin = subprocess.run(args, input=prompt, capture_output=True, check=True).stdout
    f = tmp_path / "prompt.txt"
    f.write_bytes(prompt)
    from_file = subprocess.run(args + ["-f", str(f)], capture_output=True, check=True).stdout
    assert from_stdin == from_file
    assert from_stdin.startswith(prompt) and len(from_stdin) > len(prompt)
    bad = subprocess.run(args + ["--top-p", "2"], input=prompt, capture_output=True)
    assert bad.returncode == 2 and b"--top-p 2: out of range" in bad.stderr


def test_generate_is_deterministic_and_stops():
    with lzn.Model(TINY) as model:
        runs = []
        for _ in range(2):
            with model.context() as ctx:
                runs.append("".join(ctx.generate("Once upon a time", 30, seed=11)))
        assert runs[0] == runs[1]
        with model.context() as ctx:
            assert len("".join(ctx.generate("x", 5, temperature=0))) <= 5
            with pytest.raises(lzn.LazyNeuronError) as e:
                list(ctx.generate("x", 5, top_p=0.0))
            assert "top_p" in e.value.message
