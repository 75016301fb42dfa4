"""lzn-run (cli/lzn_run.c) and python -m lazyneuron.run side by side: the same options
print the same text; help, version, defaults, seeds, the predictor switch, a full
context, write errors, -i and -e behave as documented in both; every usage error names
its option and exits 2, every runtime error exits 1 with one line.

    LAZYNEURON_LIB=build/liblazyneuron.so.0 /usr/bin/python3 -m pytest -q python/tests/test_run.py
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
REPO = PYTHON_DIR.parent
TINY = REPO / "models" / "tiny-opt"
LLAMA = REPO / "models" / "tiny-llama"
PROMPT = "The meaning of life is"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_text import lzn_run  # noqa: E402


def argv(args):
    return [a if isinstance(a, bytes) else str(a) for a in args]


def py_run(args, **kw):
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))
    return subprocess.run([sys.executable, "-m", "lazyneuron.run"] + argv(args),
                          capture_output=kw.pop("capture_output", True), env=env, timeout=60, **kw)


def c_run(args, **kw):
    return subprocess.run([str(lzn_run())] + argv(args),
                          capture_output=kw.pop("capture_output", True), timeout=60, **kw)


RUNNERS = {"c": c_run, "python": py_run}


def counts(err):
    """lzn-run's prefill/decode lines without their timings."""
    return [line.split(b" in ")[0] for line in err.splitlines()
            if line.startswith((b"prefill:", b"decode:"))]


def startup(err):
    """The startup line's fields after "MODEL: ", as a dict (seed, predictor, ...)."""
    line = next(line for line in err.decode().splitlines() if "loaded in" in line)
    fields = line.split(": ", 2)[2].split(", ")
    out = {"arch": fields[0]}
    for f in fields[1:]:
        key, _, value = f.rpartition(" ")
        if f.endswith("layers"):
            key, value = "layers", f.split()[0]
        elif "weights" in f:
            key, value = "weights", f.split()[0]
            out["packed"] = f.split("; ")[1].split()[0]  # "(X MB; Y MB packed)"
        out[key] = value
    return out


@pytest.mark.parametrize("options", [
    ["-n", "40", "--seed", "4"],
    ["-n", "40", "--temp", "0", "--mode", "dense"],
    ["-n", "40", "--temp", "1.2", "--top-k", "5", "--top-p", "0.9", "--min-p", "0.1",
     "--repeat-penalty", "1.3", "--repeat-last-n", "16", "--seed", "9", "--threads", "2"],
    ["-n", "40", "-s", "2", "--type", "q8_0", "--mode", "sparse", "--predictor", "off"],
    ["-n", "40", "-s", "3", "--type", "q8_0", "--pack-budget", "0"],
    ["-n", "0"],
    ["-n", "-1", "-c", "40", "-s", "1"],
])
def test_same_text_as_lzn_run(options):
    args = ["-m", TINY, "-p", PROMPT, "-t", "1"] + options
    ours, theirs = py_run(args), c_run(args)
    assert ours.returncode == 0 and theirs.returncode == 0, ours.stderr + theirs.stderr
    assert ours.stdout.startswith(PROMPT.encode())
    assert ours.stdout == theirs.stdout
    # The same token counts. Not the savings: in auto mode they follow a crossover each
    # context measures by timing (lzn_cost_measure).
    assert len(counts(ours.stderr)) == 2 and counts(ours.stderr) == counts(theirs.stderr)
    assert b"t/s" in ours.stderr and b"% of neurons active" in ours.stderr


@pytest.mark.parametrize("runner", RUNNERS)
def test_prompt_from_stdin_and_file(runner, tmp_path):
    prompt = b"Q: Why did the chicken\n"
    f = tmp_path / "prompt.txt"
    f.write_bytes(prompt)
    args = ["-m", TINY, "-n", "20", "--temp", "0", "-t", "1"]
    from_stdin = RUNNERS[runner](args, input=prompt)
    from_file = RUNNERS[runner](args + ["-f", f])
    assert from_stdin.returncode == 0 and from_file.returncode == 0
    assert from_stdin.stdout == from_file.stdout == c_run(args, input=prompt).stdout
    assert from_stdin.stdout.startswith(prompt) and len(from_stdin.stdout) > len(prompt)


@pytest.mark.parametrize("runner", RUNNERS)
def test_help_goes_to_stdout_with_defaults(runner):
    out = RUNNERS[runner](["--help"])
    assert out.returncode == 0 and out.stderr == b""
    text = out.stdout.decode()
    for option in ["-m", "--model", "-p", "--prompt", "-f", "--file", "-n", "--n-predict", "-c",
                   "--ctx-size", "-t", "--threads", "-s", "--seed", "--temp", "--top-k", "--top-p",
                   "--min-p", "--repeat-penalty", "--repeat-last-n", "--mode", "--type",
                   "--predictor", "--pack-budget", "-i", "--interactive", "-e", "--escape", "--version"]:
        assert re.search(rf"(^|[\s,\[]){re.escape(option)}\b", text), option
    if runner == "c":  # the defaults, spelled out
        for default in ["default 128", "default 0", "default -1", "default 0.80", "default 40",
                        "default 0.95", "default 0.05", "default 1.00", "default 64",
                        "default auto", "default on"]:
            assert default in text, default
        cores = re.search(r"default (\d+): the physical cores", text)
        assert cores and int(cores.group(1)) >= 1


@pytest.mark.parametrize("runner", RUNNERS)
def test_version(runner):
    out = RUNNERS[runner](["--version"])
    assert out.returncode == 0
    assert re.fullmatch(rb"lzn-run \d+\.\d+\.\d+\n", out.stdout), out.stdout


@pytest.mark.parametrize("runner", RUNNERS)
def test_default_seed_is_random_printed_and_reproducible(runner):
    args = ["-m", TINY, "-p", PROMPT, "-n", "48", "-t", "1", "--temp", "1.5"]
    first, second = RUNNERS[runner](args), RUNNERS[runner](args)
    assert first.returncode == 0 and second.returncode == 0
    seeds = [startup(r.stderr)["seed"] for r in (first, second)]
    assert seeds[0] != seeds[1]  # 2^-64 to fail by chance
    again = RUNNERS[runner](args + ["-s", seeds[0]])
    assert again.stdout == first.stdout
    assert startup(again.stderr)["seed"] == seeds[0]
    minus_one = RUNNERS[runner](args + ["-s", "-1"])
    assert startup(minus_one.stderr)["seed"] not in seeds


@pytest.mark.parametrize("runner", RUNNERS)
def test_startup_line(runner, tmp_path):
    out = RUNNERS[runner](["-m", TINY, "-p", "x", "-n", "1", "-t", "1", "--mode", "sparse",
                           "--type", "q8_0"])
    fields = startup(out.stderr)
    assert fields["arch"] == "opt" and fields["layers"] == "4" and fields["weights"] == "q8_0"
    assert fields["isa"] in {"scalar", "avx2", "avxvnni", "avx512", "avx512bf16", "avx512vnni"}
    assert fields["mode"] == "sparse" and fields["predictor"] == "on" and fields["context"] == "256"
    off = startup(RUNNERS[runner](["-m", TINY, "-p", "x", "-n", "1", "-t", "1",
                                   "--predictor", "off"]).stderr)
    assert off["predictor"] == "off"
    # F32 has no packed copies; Q8_0 has them where the CPU has AVX512-VNNI, none with a budget of 0.
    assert off["packed"] == "0.0"
    unpacked = startup(RUNNERS[runner](["-m", TINY, "-p", "x", "-n", "1", "-t", "1", "--type", "q8_0",
                                        "--pack-budget", "0"]).stderr)
    assert unpacked["packed"] == "0.0" and float(fields["packed"]) >= 0
    assert (float(fields["packed"]) > 0) == (fields["isa"] == "avx512vnni")
    llama = startup(RUNNERS[runner](["-m", LLAMA, "-p", "x", "-n", "1", "-t", "1"]).stderr)
    assert llama["predictor"] == "on" and llama["arch"] == "llama"  # it ships one
    bare = tmp_path / "tiny-llama"  # the same model without its predictor
    bare.mkdir()
    for f in LLAMA.iterdir():
        if f.is_file() and f.name != "predictor.safetensors":
            (bare / f.name).symlink_to(f)
    none = startup(RUNNERS[runner](["-m", bare, "-p", "x", "-n", "1", "-t", "1"]).stderr)
    assert none["predictor"] == "none" and none["arch"] == "llama"


def test_predictor_off_is_the_exact_model():
    """--predictor off gives what --mode dense gives (the exact model, greedy); on, the
    predictor's approximation is in use (its recall is below 1 on some token here)."""
    base = ["-m", TINY, "-p", PROMPT, "-n", "120", "--temp", "0", "-t", "1"]
    off = c_run(base + ["--predictor", "off", "--mode", "sparse"])
    dense = c_run(base + ["--mode", "dense"])
    assert off.returncode == 0 and off.stdout == dense.stdout


@pytest.mark.parametrize("runner", RUNNERS)
def test_full_context_is_said(runner):
    # 22 prompt bytes, a context of 30: 8 tokens run after the prompt, a 9th is printed
    out = RUNNERS[runner](["-m", TINY, "-p", PROMPT, "-n", "-1", "-c", "30", "--temp", "0",
                           "-t", "1", "--predictor", "off"])
    assert out.returncode == 0
    assert b"the context is full (30 tokens)" in out.stderr
    assert len(out.stdout) - len(PROMPT) <= 9
    long_prompt = RUNNERS[runner](["-m", TINY, "-p", "x" * 31, "-c", "30", "-t", "1"])
    assert long_prompt.returncode == 1 and b"the prompt is 31 tokens, the context holds 30" in long_prompt.stderr


@pytest.mark.parametrize("runner", RUNNERS)
def test_write_error_exits_1(runner):
    with open("/dev/full", "wb") as full:
        out = RUNNERS[runner](["-m", TINY, "-p", PROMPT, "-n", "8", "-t", "1"], stdout=full,
                              capture_output=False, stderr=subprocess.PIPE)
    assert out.returncode == 1
    assert b"No space left on device" in out.stderr and b"Traceback" not in out.stderr


@pytest.mark.parametrize("runner", RUNNERS)
def test_closed_stdout_exits_1_quietly(runner):
    args = ["-m", TINY, "-p", PROMPT, "-n", "-1", "--temp", "0", "-t", "1", "--predictor", "off"]
    cmd = ([str(lzn_run())] if runner == "c" else [sys.executable, "-m", "lazyneuron.run"]) + argv(args)
    r, w = os.pipe()
    os.close(r)  # nobody will read
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))
    out = subprocess.run(cmd, stdout=w, stderr=subprocess.PIPE, env=env, timeout=60)
    os.close(w)
    assert out.returncode == 1 and b"Traceback" not in out.stderr


@pytest.mark.parametrize("runner", RUNNERS)
def test_escapes(runner):
    base = ["-m", TINY, "-n", "10", "--temp", "0", "-t", "1"]
    escaped = RUNNERS[runner](base + ["-e", "-p", r"Tab\there\nnew \x41 \\ \q"])
    plain = RUNNERS[runner](base + ["-p", "Tab\there\nnew A \\ \\q"])
    assert escaped.returncode == 0 and escaped.stdout == plain.stdout
    raw = RUNNERS[runner](base + ["-p", r"a\nb"])
    assert raw.stdout.startswith(rb"a\nb")  # without -e: as written


@pytest.mark.parametrize("runner", RUNNERS)
def test_interactive_keeps_the_cache(runner):
    """-i: each line continues the sequence; only the new tokens run (prefill counts
    the prompt, then per turn the last printed token + the line), and the text equals a
    fresh greedy run on the whole sequence so far."""
    args = ["-m", TINY, "-n", "12", "--temp", "0", "-t", "1", "--predictor", "off", "--mode", "dense"]
    out = RUNNERS[runner](args + ["-i", "-p", "Hello"], input=b"abc\nxy\n")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    first = text.index(b"abc\n")
    second = text.index(b"xy\n", first + 4)
    # prompt 5 + (1 pending + 4) + (1 pending + 3) tokens prefilled; 11 decoded per turn
    assert counts(out.stderr) == [b"prefill: 14 tokens", b"decode:  33 tokens"]
    assert len(text) == 5 + 12 + 4 + 12 + 3 + 12
    fresh = c_run(args + ["-p", text[:second + 3]])
    assert fresh.stdout == text


@pytest.mark.parametrize("runner", RUNNERS)
def test_interactive_without_prompt_and_eof(runner):
    args = ["-m", TINY, "-n", "5", "--temp", "0", "-t", "1", "-i"]
    out = RUNNERS[runner](args, input=b"Once upon\n")
    assert out.returncode == 0 and out.stdout.startswith(b"Once upon\n") and len(out.stdout) <= 15
    assert counts(out.stderr)[0] == b"prefill: 10 tokens"  # the line, no BOS (tiny-opt has none)
    nothing = RUNNERS[runner](args, input=b"")
    assert nothing.returncode == 0 and nothing.stdout == b""


USAGE_ERRORS = [  # arguments after -m TINY, what stderr names
    (["-x"], "-x"),
    (["--bogus", "1"], "--bogus"),
    (["-p", "x", "-n"], "-n"),
    (["-p", "x", "-n", "abc"], "-n"),
    (["-p", "x", "-n", "-2"], "-n"),
    (["-p", "x", "-t", "0"], "-t"),
    (["-p", "x", "--threads", "many"], "--threads"),
    (["-p", "x", "-c", "-1"], "-c"),
    (["-p", "x", "--temp", "warm"], "--temp"),
    (["-p", "x", "--temp", "-1"], "--temp"),
    (["-p", "x", "--temp", "nan"], "--temp"),
    (["-p", "x", "--top-p", "2"], "--top-p"),
    (["-p", "x", "--top-p", "0"], "--top-p"),
    (["-p", "x", "--min-p", "1.5"], "--min-p"),
    (["-p", "x", "--repeat-penalty", "0"], "--repeat-penalty"),
    (["-p", "x", "--top-k", "-3"], "--top-k"),
    (["-p", "x", "--seed", "abc"], "--seed"),
    (["-p", "x", "-s", "-5"], "-s"),
    (["-p", "x", "--seed", "18446744073709551616"], "--seed"),
    (["-p", "x", "--mode", "fast"], "--mode"),
    (["-p", "x", "--type", "q2"], "--type"),
    (["-p", "x", "--predictor", "maybe"], "--predictor"),
    (["-p", "x", "--pack-budget", "-1"], "--pack-budget"),
    (["-p", "x", "--pack-budget", "lots"], "--pack-budget"),
    (["-f", "/tmp"], "-f /tmp: is a directory"),
    (["-p", "x", "-f", "y"], "-f"),
]


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("args,named", USAGE_ERRORS)
def test_usage_errors_exit_2(runner, args, named):
    out = RUNNERS[runner](["-m", TINY] + args)
    assert out.returncode == 2 and out.stdout == b"", out.stderr
    lines = out.stderr.decode().splitlines()
    assert len(lines) == 1 and named in lines[0], lines


@pytest.mark.parametrize("runner", RUNNERS)
def test_model_is_required(runner):
    out = RUNNERS[runner](["-p", "x"])
    assert out.returncode == 2 and b"-m" in out.stderr


@pytest.mark.parametrize("runner", RUNNERS)
def test_runtime_errors_exit_1_with_one_line(runner, tmp_path):
    cases = [
        (["-m", TINY, "-p", ""], b"the prompt is empty"),
        (["-m", REPO / "no-such-model", "-p", "x"], b"LZN_ERR_IO"),
        (["-m", "/etc/passwd", "-p", "x"], b"not a GGUF or safetensors file"),
        (["-m", REPO / "tests" / "data" / "opt-preln", "-p", "x"], b"no tokenizer"),
        (["-m", TINY, "-f", tmp_path / "missing.txt"], b"missing.txt"),
        (["-m", TINY, "-p", "x", "-c", "100000"], b"LZN_ERR_INVALID_ARG"),
    ]
    for args, said in cases:
        out = RUNNERS[runner](args + ["-t", "1"])
        lines = out.stderr.decode().strip().splitlines()
        assert out.returncode == 1 and out.stdout == b"", (args, out.stderr)
        assert said in out.stderr and b"Traceback" not in out.stderr, (args, out.stderr)
        assert len([line for line in lines if "loaded in" not in line]) == 1, lines


CHAT = ["-m", TINY, "-n", "8", "--temp", "0", "-t", "1", "--predictor", "off", "--mode", "dense"]


def turns(err):
    """-cnv's per-turn lines as (kept, new) pairs, and the resets."""
    out = []
    for line in err.decode().splitlines():
        m = re.match(r"\[turn \d+: (\d+) tokens of the conversation kept in the cache, (\d+) new\]", line)
        if m:
            out.append((int(m.group(1)), int(m.group(2))))
        elif line == "[the conversation starts over]":
            out.append("reset")
    return out


def test_chat_keeps_the_conversation_in_the_cache():
    """-cnv: turn 2 runs only what follows turn 1's kept tokens; after /reset the
    same first message reuses all of turn 1's prompt but the last token (which
    must run again for its logits); the replies equal a fresh greedy run of the
    rendered conversation."""
    out = c_run(CHAT + ["-cnv", "--chat-template", "chatml"],
                input=b"Hello there\nWhat is up?\n/reset\nHello there\n")
    assert out.returncode == 0, out.stderr
    t = turns(out.stderr)
    assert len(t) == 4 and t[0][0] == 0 and t[2] == "reset", t
    (k1, n1), (k2, n2), (k3, n3) = t[0], t[1], t[3]
    assert k2 > n1 and n2 > 0          # turn 1's prompt and reply stayed
    assert (k3, n3) == (n1 - 1, 1)     # the reset conversation starts as turn 1 did
    replies = out.stdout.split(b"\n")
    assert replies[0] and replies[0] == replies[2]  # same conversation, same greedy reply
    rendered = b"<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
    fresh = c_run(CHAT + ["-p", rendered])
    assert fresh.stdout.startswith(rendered)
    assert fresh.stdout[len(rendered):].startswith(replies[0])


def test_chat_system_message_and_template_errors():
    system = c_run(CHAT + ["-cnv", "-p", "Be brief."], input=b"Hi\n")
    plain = c_run(CHAT + ["-cnv"], input=b"Hi\n")
    assert system.returncode == 0 and plain.returncode == 0
    assert turns(system.stderr)[0][1] > turns(plain.stderr)[0][1]  # the system turn is rendered
    bad = c_run(CHAT + ["-cnv", "--chat-template", "nope"], input=b"Hi\n")
    assert bad.returncode == 2 and b"--chat-template" in bad.stderr and b"chatml" in bad.stderr
    jinja = c_run(CHAT + ["-cnv", "--chat-template", "{{ messages }}"], input=b"Hi\n")
    assert jinja.returncode == 0 and b"using ChatML" in jinja.stderr
