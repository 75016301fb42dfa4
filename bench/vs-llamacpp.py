#!/usr/bin/python3
"""vs-llamacpp.py: lazyneuron against llama.cpp on the very same GGUF file.

usage: bench/vs-llamacpp.py LLAMACPP_DIR [--types q4_0,q8_0] [--mixes q4_k_m,q4_0]
           [--densities 10,15,33] [--threads 1,2] [--tests tg32,pp128,pp512] [--batch 1,2,4,8]
           [--rounds 3] [--layers 32] [--work DIR] [--predictor [--predictor-types f16,q8_0]]
           [--build build]
           [--anchors ../shared/anchors] [--dry-run]

LLAMACPP_DIR is what ../shared/anchors/build_llamacpp.sh made: bin/llama-bench,
bin/llama-quantize and src/ (its gguf-py writes the file). llama.cpp is the
yardstick only: nothing of it is linked into or required by the library.

The file: make_llama_gguf.py writes a random-weight LLaMA-architecture GGUF in
the 7B shape (d_model 4096, d_ff 11008, 32 layers) marked FATReLU with the
threshold at which ~10 % of neurons fire; llama-quantize --pure makes each
type from it (cached in --work), and, for --mixes, llama-quantize without
--pure the file people download: Q4_K_M (Q4_K, Q6_K for the output matrix and
some V and W_down matrices), Q5_K_M, or Q4_0 with its Q6_K output matrix. llama.cpp ignores the marker and runs the file
as a dense SiLU model of the same cost; lazyneuron runs it dense, and sparse /
auto at each --densities percent by setting the context's threshold (lzn-bench
model --threshold replaces the file's), so every row reads the same bytes.
The active percent printed is the one lazyneuron measured.

Interleaved: each round runs, per type and thread count, llama-bench, then
lazyneuron dense, then lazyneuron at each density (sparse and auto alternating
inside lzn-bench), one timed repetition each (plus each program's warm-up);
the table gives the median over rounds, [min-max], and the ratio of medians to
llama.cpp's. --predictor adds lazyneuron sparse with an exact low-rank
predictor (predicted set 2x the active set) on `lzn-bench model --synthetic
relullama-7b` of the same shape and type: a model built in memory, not the
file (a predictor needs a gate it can predict; random weights have none).
--predictor-types gives its matrices' types, a row each (default f16, as a
PowerInfer GGUF may carry it; q8_0 reads half its bytes).

--batch N,...: batched decode as well: llama.cpp's llama-batched-bench (-npp 128
-ntg 32 -npl N,...; its speed_tg, the aggregate generation t/s of N sequences)
against `lzn-bench batch` on the same file (32 steps of N sequences after a
1-token prompt each; tokens/s of the batched steps), dense and sparse at each
density, interleaved in the same rounds; "batchN" rows in the table.

Quote numbers only from a quiet machine: the script prints the CPU, its L3,
the load average before and after, and warns when the load is 0.5 or more.
Raw results go to WORK/vs-llamacpp-<time>.jsonl.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
D_MODEL = 4096
GATE_SIGMA = 0.02 * D_MODEL ** 0.5  # make_llama_gguf.py: gate rows ~ N(0, 0.02^2), RMS-normed input
FILE_DENSITY = 0.10                 # the FATRELU marker written into the file


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("llamacpp", type=Path, help="build_llamacpp.sh's OUT_DIR (bin/, src/)")
    p.add_argument("--types", default="q4_0,q8_0", help="llama-quantize --pure types, or f16 (the file itself)")
    p.add_argument("--mixes", default="", help="llama-quantize types made without --pure (q4_k_m, q5_k_m, q4_0)")
    p.add_argument("--densities", default="10,15,33", help="percent of MLP neurons active")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--tests", default="tg32,pp128", help="tgN and ppN, as lzn-bench and llama-bench")
    p.add_argument("--batch", default="", help="N,...: batched decode (llama-batched-bench, lzn-bench batch)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "lzn-vs-llamacpp",
                   help="where the GGUF files are made and kept (~13 GiB F16 + each type)")
    p.add_argument("--predictor", action="store_true", help="add sparse + exact predictor rows (synthetic)")
    p.add_argument("--predictor-types", default="f16",
                   help="the predictor's matrix types, a row each (lzn-bench --predictor-type; default f16)")
    p.add_argument("--build", type=Path, default=REPO / "build", help="lazyneuron's build folder (lzn-bench)")
    p.add_argument("--anchors", type=Path, default=REPO.parent / "shared" / "anchors")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    a = p.parse_args()
    a.types = [t for t in a.types.split(",") if t]
    a.mixes = [t for t in a.mixes.split(",") if t]
    a.predictor_types = [t for t in a.predictor_types.split(",") if t]
    a.densities = [float(d) for d in a.densities.split(",")]
    a.threads = [int(t) for t in a.threads.split(",")]
    a.tests = a.tests.split(",")
    a.batch = [int(n) for n in a.batch.split(",")] if a.batch else []
    for t in a.tests:
        if t[:2] not in ("tg", "pp") or not t[2:].isdigit():
            p.error("--tests: %r is not tgN or ppN" % t)
    return a


def say(*words):
    print(*words, file=sys.stderr, flush=True)


def run(cmd, dry, env=None):
    say("$ " + " ".join(str(c) for c in cmd))
    if dry:
        return ""
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (out.returncode, " ".join(map(str, cmd)), out.stderr[-2000:]))
    return out.stdout


def threshold_for(density_pct):
    """The FATReLU threshold at which density_pct of the gate's outputs fire."""
    return GATE_SIGMA * statistics.NormalDist().inv_cdf(1.0 - density_pct / 100.0)


def machine(a):
    """lzn-bench isa's lines: the kernel set, then CPU, LLC, CPUs and RAM."""
    out = subprocess.run([str(a.build / "lzn-bench"), "isa"], capture_output=True, text=True).stdout
    return " | ".join(out.strip().splitlines())


def mix_label(name):
    """A mix's name in the table and its file: Q4_K_M is one already; a plain type's mix (Q4_0
    with a Q6_K output matrix) is "q4_0-mixed", beside the --pure "q4_0"."""
    return name if name.endswith(("_s", "_m", "_l")) else name + "-mixed"


def make_files(a):
    """The F16 file (FATReLU at 10 %), one llama-quantize --pure file per type, and one file per
    mix (llama-quantize without --pure)."""
    a.work.mkdir(parents=True, exist_ok=True)
    f16 = a.work / ("llama7b-shape-%dL-fatrelu10-f16.gguf" % a.layers)
    if not f16.exists():
        env = dict(os.environ, FATRELU=str(FILE_DENSITY))
        run(["/usr/bin/python3", a.anchors / "make_llama_gguf.py", a.llamacpp / "src", f16, a.layers],
            a.dry_run, env)
    files = {}
    for t in a.types:
        if t == "f16":
            files[t] = f16
            continue
        out = a.work / f16.name.replace("-f16.gguf", "-%s.gguf" % t)
        if not out.exists():
            run([a.llamacpp / "bin" / "llama-quantize", "--pure", f16, out, t.upper()], a.dry_run)
        files[t] = out
    for t in a.mixes:
        out = a.work / f16.name.replace("-f16.gguf", "-%s.gguf" % mix_label(t))
        if not out.exists():
            run([a.llamacpp / "bin" / "llama-quantize", f16, out, t.upper()], a.dry_run)
        files[mix_label(t)] = out
    if "f16" not in a.types and not a.dry_run:
        evict(f16)
    return files


def evict(path):
    """Drops a file's pages from the page cache: the 13 GB F16 file, just written or read
    by llama-quantize, otherwise keeps most of a 24 GB machine's memory, and lazyneuron's
    private copies (W_down^T, the packed matrices) then push the benchmarked file's own
    pages out (measured: sparse @10 % at 1.27x llama.cpp in such a run, 2.41x after
    dropping the caches)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)  # dirty pages are not dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def huge_file_pages():
    """The page cache's 2 MiB folios (FileHugePages), as a phrase."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("FileHugePages:"):
                    return "%.1f GiB of file pages in 2 MiB folios after the run" % (int(line.split()[1]) / 2**20)
    except OSError:
        pass
    return "FileHugePages unknown"


def llama_bench(a, path):
    """{(threads, test): t/s} from one llama-bench run over every thread count, one repetition per test."""
    tg = [int(t[2:]) for t in a.tests if t.startswith("tg")]
    pp = [int(t[2:]) for t in a.tests if t.startswith("pp")]
    cmd = [a.llamacpp / "bin" / "llama-bench", "-m", path, "-t", ",".join(map(str, a.threads)), "-r", 1,
           "-o", "json", "-p", ",".join(map(str, pp)) or "0", "-n", ",".join(map(str, tg)) or "0"]
    out = run(cmd, a.dry_run)
    result = {}
    for row in json.loads(out) if out else []:
        if row["n_prompt"] and not row["n_gen"]:
            result[(row["n_threads"], "pp%d" % row["n_prompt"])] = row["avg_ts"]
        elif row["n_gen"] and not row["n_prompt"]:
            result[(row["n_threads"], "tg%d" % row["n_gen"])] = row["avg_ts"]
    return result


def lzn_bench(a, source, modes, extra):
    """[(threads, mode, test, t/s, active %)] from one lzn-bench model run over every thread count
    (one load of the model: loading a 7B file takes ~45 s), one repetition."""
    cmd = [a.build / "lzn-bench", "model"] + source + [
        "--threads", ",".join(map(str, a.threads)), "--mode", ",".join(modes), "--test", ",".join(a.tests),
        "--reps", 1, "-o", "json"] + extra
    out = run(cmd, a.dry_run)
    return [(r["threads"], r["mode"], r["test"], r["t_s"], r["density"]) for r in (json.loads(out) if out else [])]


def llama_batched(a, path, threads):
    """{N: aggregate generation t/s} from one llama-batched-bench run."""
    ctx = max(a.batch) * (128 + 32)
    cmd = [a.llamacpp / "bin" / "llama-batched-bench", "-m", path, "-c", ctx, "-b", 2048, "-ub", 512,
           "-npp", 128, "-ntg", 32, "-npl", ",".join(map(str, a.batch)), "-t", threads,
           "--output-format", "jsonl"]
    out = run(cmd, a.dry_run)
    result = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            row = json.loads(line)
            result[int(row["pl"])] = row["speed_tg"]
    return result


def lzn_batched(a, path, threads, mode, extra):
    """{N: tokens/s of the batched steps} from one lzn-bench batch run."""
    cmd = [a.build / "lzn-bench", "batch", "--model", path, "--batch", ",".join(map(str, a.batch)),
           "--steps", 32, "--reps", 1, "--threads", threads, "--mode", mode, "-o", "json"] + extra
    out = run(cmd, a.dry_run)
    return {r["n"]: (r["tokens_per_s_batched"], r["union_pct"]) for r in (json.loads(out) if out else [])}


def one_round_batch(a, files, record):
    for type_name, path in files.items():
        for threads in a.threads:
            key = (type_name, threads)
            for n, ts in llama_batched(a, path, threads).items():
                record(key, "batch%d" % n, "llama.cpp dense", ts, 100.0)
            for n, (ts, union) in lzn_batched(a, path, threads, "dense", []).items():
                record(key, "batch%d" % n, "lazyneuron dense", ts, union)
            for d in a.densities:
                th = "%.6f" % threshold_for(d)
                for n, (ts, union) in lzn_batched(a, path, threads, "sparse", ["--threshold", th]).items():
                    record(key, "batch%d" % n, "lazyneuron sparse @%g %% (union %%)" % d, ts, union)


def one_round(a, files, record):
    """Per file: llama.cpp, then lazyneuron once per density (dense rides along with the first), each
    program over every thread count in one run."""
    for type_name, path in files.items():
        for (threads, test), ts in llama_bench(a, path).items():
            record((type_name, threads), test, "llama.cpp dense", ts, 100.0)
        for i, d in enumerate(a.densities):
            th = "%.6f" % threshold_for(d)
            modes = (["dense"] if i == 0 else []) + ["sparse", "auto"]
            for threads, mode, test, ts, dens in lzn_bench(a, ["--model", path], modes, ["--threshold", th]):
                engine = "lazyneuron dense" if mode == "dense" else "lazyneuron %s @%g %%" % (mode, d)
                record((type_name, threads), test, engine, ts, dens)
            if a.predictor and type_name in a.types:  # a mix has no one --type for lzn-bench
                for ptype in a.predictor_types:
                    src = ["--synthetic", "relullama-7b", "--layers", str(a.layers), "--type", type_name,
                           "--density", str(d), "--predictor", "0", "--predictor-type", ptype]
                    for threads, mode, test, ts, dens in lzn_bench(a, src, ["sparse"], []):
                        record((type_name, threads), test,
                               "lazyneuron sparse + %s predictor @%g %% (synthetic)" % (ptype, d), ts, dens)


def table(a, results):
    print("| type | threads | test | engine | active % | t/s median [min-max] | x llama.cpp |")
    print("| ---- | ------: | ---- | ------ | -------: | -------------------: | ----------: |")
    for (type_name, threads), tests in results.items():
        for test in a.tests + ["batch%d" % n for n in a.batch]:
            rows = tests.get(test, {})
            base = rows.get("llama.cpp dense")
            base_median = statistics.median(base["ts"]) if base else None
            for engine, r in rows.items():
                med = statistics.median(r["ts"])
                ratio = "%.2f" % (med / base_median) if base_median else "-"
                print("| %s | %d | %s | %s | %.1f | %.2f [%.2f-%.2f] | %s |" % (
                    type_name, threads, test, engine, statistics.median(r["active"]), med, min(r["ts"]),
                    max(r["ts"]), ratio))


def main():
    a = parse_args()
    for tool in ("llama-bench", "llama-quantize") + (("llama-batched-bench",) if a.batch else ()):
        if not (a.llamacpp / "bin" / tool).exists():
            sys.exit("%s: no bin/%s (build it with ../shared/anchors/build_llamacpp.sh)" % (a.llamacpp, tool))
    if not (a.build / "lzn-bench").exists():
        sys.exit("%s: no lzn-bench (make)" % a.build)
    files = make_files(a)
    if not a.dry_run:
        # Both programs map the file (llama.cpp copies what it repacks): how the page cache
        # holds it decides their page size. A file written on this machine stays cached in
        # 4 KiB pages, one read since it was dropped is cached in 2 MiB folios where the
        # kernel makes them (Linux 6.x on ext4/XFS); measured 1.3-1.7x apart on one thread
        # (bench/RESULTS.md). Dropped here, every run starts from the state after a reboot.
        for path in set(files.values()):
            evict(path)
    load_before = os.getloadavg()[0]
    if load_before >= 0.5:
        say("warning: load average %.2f: numbers from a busy machine are not to be quoted" % load_before)
    results = {}
    raw_path = a.work / time.strftime("vs-llamacpp-%Y%m%d-%H%M%S.jsonl")
    raw = open(raw_path, "w") if not a.dry_run else None

    def record(key, test, engine, ts, active):
        r = results.setdefault(key, {}).setdefault(test, {}).setdefault(engine, {"ts": [], "active": []})
        r["ts"].append(ts)
        r["active"].append(active)
        if raw:
            raw.write(json.dumps({"type": key[0], "threads": key[1], "test": test, "engine": engine,
                                  "t_s": ts, "active_pct": active}) + "\n")
            raw.flush()

    started = time.time()
    for r in range(a.rounds):
        say("round %d of %d" % (r + 1, a.rounds))
        one_round(a, files, record)
        if a.batch:
            one_round_batch(a, files, record)
    load_after = os.getloadavg()[0]
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print("lazyneuron %s vs llama.cpp (%s) on %s; %d layers; %d rounds interleaved, %.0f min; "
          "load average %.2f before, %.2f after; %s" % (commit, a.llamacpp, machine(a), a.layers, a.rounds,
                                                   (time.time() - started) / 60, load_before, load_after,
                                                   "a dry run" if a.dry_run else
                                                   "files dropped from the page cache before round 1, " +
                                                   huge_file_pages()))
    print()
    table(a, results)
    if raw:
        raw.close()
        say("raw results: %s" % raw_path)


if __name__ == "__main__":
    main()
