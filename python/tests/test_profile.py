"""lzn-profile on models/tiny-opt with a short text: the JSON report has the
keys and numbers it promises, md and csv come out, and bad input fails with
a message.

    LAZYNEURON_LIB=build/liblazyneuron.so.0 /usr/bin/python3 -m pytest -q python/tests/test_profile.py
"""

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "models" / "tiny-opt"
WINDOWS = [1, 2, 4, 8]
TEXT = (b"You will be successful in your work.\x02"
        b"A journey of a thousand miles begins with a single step.\x02") * 2
# Union fractions of different window sizes come from different passes whose
# float sums are accumulated separately; 1e-9 absorbs their rounding only.
EPS = 1e-9


def lzn_profile():
    """build/lzn-profile beside the library under test, built if missing."""
    lib = os.environ.get("LAZYNEURON_LIB")
    build = Path(lib).resolve().parent if lib else REPO / "build"
    exe = build / "lzn-profile"
    rel = os.path.relpath(build, REPO)
    subprocess.run(["make", "--no-print-directory", "-s", f"BUILD={rel}", f"{rel}/lzn-profile"],
                   cwd=REPO, check=True)
    assert exe.is_file()
    return exe


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("profile") / "text.txt"
    path.write_bytes(TEXT)
    return path


def run(*args):
    return subprocess.run([str(lzn_profile()), *map(str, args)], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def report(text_file):
    r = run("-m", TINY, "-f", text_file, "--windows", ",".join(map(str, WINDOWS)), "-o", "json")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b"", "no progress bar when stderr is not a terminal"
    return json.loads(r.stdout)


def test_report_keys_and_numbers(report):
    assert report["model"] == "tiny-opt"
    assert report["bytes"] == len(TEXT) and report["tokens"] == len(TEXT)
    assert report["windows"] == WINDOWS
    d_ff = report["d_ff"]
    assert d_ff == 512 and report["n_layers"] == 4 == len(report["layers"])
    for layer in report["layers"]:
        assert layer["tokens"] == len(TEXT)
        q = [layer[f"active_fraction_{k}"] for k in ("p10", "p50", "p90", "max")]
        assert all(0.0 <= x <= 1.0 for x in q + [layer["active_fraction_mean"]])
        assert q == sorted(q)
        assert q[0] <= layer["active_fraction_mean"] <= q[3]
        assert 0 <= layer["never_fired"] <= d_ff
        assert layer["never_fired_fraction"] == pytest.approx(layer["never_fired"] / d_ff)
        # A sparse ReLU layer does less than the dense MLP, and the saving
        # is the inactive share of its rows.
        assert 0 < layer["flops_executed"] < layer["flops_dense"]
        assert 0 < layer["bytes_executed"] < layer["bytes_dense"]
        assert layer["flops_saved_fraction"] == pytest.approx(1 - layer["active_fraction_mean"], abs=1e-6)
        union = layer["union"]
        assert [u["window"] for u in union] == WINDOWS
        assert [u["calls"] for u in union] == [len(TEXT) // w for w in WINDOWS]
        # One token per call: the union is the token's own set.
        assert union[0]["union_fraction"] == pytest.approx(layer["active_fraction_mean"], abs=1e-9)
        previous = 0.0
        for u in union:
            assert 0.0 <= u["union_fraction"] <= 1.0
            assert u["union_fraction"] >= previous - EPS
            assert u["union_fraction"] >= u["per_token_fraction"] - EPS
            assert u["independent_fraction"] == pytest.approx(
                1 - (1 - layer["active_fraction_mean"]) ** u["window"])
            previous = u["union_fraction"]
    assert any("histogram" in n for n in report["notes"])


def test_md_and_csv(text_file):
    md = run("-m", TINY, "-f", text_file, "--windows", "1,4")
    assert md.returncode == 0, md.stderr.decode()
    out = md.stdout.decode()
    assert "# lzn-profile: tiny-opt" in out and "| w=4 |" in out and "histogram" in out
    c = run("-m", TINY, "-f", text_file, "--windows", "1,4", "-o", "csv")
    assert c.returncode == 0, c.stderr.decode()
    rows = list(csv.DictReader(io.StringIO(c.stdout.decode())))
    assert len(rows) == 4 * 2
    assert {r["window"] for r in rows} == {"1", "4"}
    assert all(0 <= float(r["union_fraction"]) <= 1 for r in rows)


def test_plots(text_file, tmp_path):
    out = tmp_path / "plots"
    r = run("-m", TINY, "-f", text_file, "--windows", "1,2", "--plots", out)
    assert r.returncode == 0, r.stderr.decode()
    report = json.loads((out / "profile-tiny-opt.json").read_text())
    assert len(report["layers"]) == 4
    # The PNGs need matplotlib; without it the CLI says so and still succeeds.
    if b"matplotlib is missing" not in r.stderr:
        for name in ("density", "union"):
            assert (out / f"profile-tiny-opt-{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_without_script(text_file, tmp_path):
    env = dict(os.environ, LZN_TOOLS_DIR=str(tmp_path / "nowhere"))
    r = subprocess.run([str(lzn_profile()), "-m", str(TINY), "-f", str(text_file), "--windows", "1",
                        "--plots", str(tmp_path / "p")], capture_output=True, env=env, timeout=120)
    assert r.returncode == 0
    assert b"plot_profile.py not found" in r.stderr
    assert (tmp_path / "p" / "profile-tiny-opt.json").is_file()


@pytest.mark.parametrize("args, message", [
    (["-m", "/nonexistent/model", "-f", "TEXT"], b"/nonexistent/model"),
    (["-m", TINY, "-f", "/nonexistent/text.txt"], b"/nonexistent/text.txt"),
    (["-m", TINY, "-f", "TEXT", "-o", "xml"], b"-o is md, json or csv"),
    (["-m", TINY, "-f", "TEXT", "--windows", "4,2"], b"--windows"),
    (["-m", TINY, "-f", "TEXT", "--windows", "1,512"], b"longer than the model's context"),
    (["-m", TINY], b"-f TEXT is required"),
    (["-f", "TEXT"], b"-m MODEL is required"),
])
def test_bad_input(text_file, args, message):
    r = run(*[text_file if a == "TEXT" else a for a in args])
    assert r.returncode != 0
    assert message in r.stderr, r.stderr.decode()


def test_empty_text(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    r = run("-m", TINY, "-f", empty)
    assert r.returncode != 0
    assert b"no tokens" in r.stderr


def test_progress_on_a_terminal(text_file):
    """stderr on a pseudo-terminal gets the \\r-redrawn progress bar."""
    import pty
    import threading
    master, slave = pty.openpty()
    seen = []

    def drain():  # read while the CLI writes, so the terminal never fills
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other end is closed
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        r = subprocess.run([str(lzn_profile()), "-m", str(TINY), "-f", str(text_file), "--windows", "1,2",
                            "-o", "json"], stdout=subprocess.PIPE, stderr=slave, timeout=120)
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    assert r.returncode == 0
    json.loads(r.stdout)  # the bar never reaches stdout
    tty = b"".join(seen)
    assert b"\r" in tty and b"profiling" in tty and b"100%" in tty
