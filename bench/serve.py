#!/usr/bin/python3
"""Load benchmark of lzn-server: N concurrent streaming clients against one
server, against as many requests of the same shape sent one at a time.

    bench/serve.py [--server build/lzn-server] [--model models/tiny-opt]
                   [--clients 1,4,16] [--requests R] [--tokens T] [--prompt-tokens P]
                   [--threads N] [--mode auto|sparse|dense] [-o md|json]
    bench/serve.py --synthetic relullama-7b --layers 4 --clients 1,8 ...

It starts lzn-server on a free loopback port (--slots = the largest N),
and for each N runs N client threads (C ones, `lzn-bench clients`, unless
--client python) that each send R streaming
completions of T tokens at temperature 0 (distinct prompts of P tokens, given as
token ids so that a model without a tokenizer works; every run's prompts new
to the server's cached prefixes, see prompt()), reading the server-sent
events as they arrive. Reported per N: aggregate generated tokens/s over
the wall time, time to first token and the time per token (each request's
first-to-last text time over its tokens; p50, p99 over requests), the p99
of the waits between events (stalls), and the speed-up over N x R requests of
the same shape sent one after another by one client ("sequential"); from the server's /metrics, the mean batch of
its decode steps, the library's time per step (lzn_forward_batch) and the
share of the wall time spent in it, and the share spent prefilling prompts
(lzn_forward; the rest: sampling, the scheduler, HTTP, and waiting for
work). --synthetic writes a synthetic model with
`lzn-bench export` first (its `--layers` keeps it small enough to write).

The overhead line compares the time per token through the server at N = 1
(as the client sees it) with the library's decode step in the same run
(the server's lzn_decode_seconds_total over lzn_batch_steps_total, read
from /metrics before and after): what sampling, the scheduler, JSON, SSE
and HTTP add per generated token.

Numbers depend on the machine being quiet: the script says how loaded it
was (the load average before and after).
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


class Server:
    def __init__(self, binary, model, slots, extra):
        # stderr to a file: a pipe nobody reads during the run fills up and
        # blocks the server's logging threads (and then its shutdown).
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([binary, "-m", model, "--port", "0", "--slots", str(slots),
                                      "--queue", "1024", *extra],
                                     stdout=subprocess.PIPE, stderr=self.err, text=True)
        line = self.proc.stdout.readline()
        if "listening" not in line:
            sys.exit("serve.py: lzn-server did not start: " + line + self.stderr())
        self.port = int(line.split("127.0.0.1:")[1].split()[0])
        line = self.proc.stdout.readline()
        if "ready" not in line:
            sys.exit("serve.py: lzn-server did not load the model: " + line + self.stderr())

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def stream(port, prompt, tokens):
    """One streamed completion: (t_sent, arrival times of the events that
    carry text, tokens generated). The server sends what is ready when the
    client's thread gets to it, so under load one event may carry several
    tokens; the count comes from the final chunk's usage."""
    body = request_body(prompt, tokens).encode()
    sock = socket.create_connection(("127.0.0.1", port))
    t0 = time.perf_counter()
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    arrivals, buf, n_tokens = [], b"", 0
    while True:
        data = sock.recv(65536)
        if not data:
            break
        now = time.perf_counter()
        buf += data
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            if b'"finish_reason":null' in event and b'"tokens":[' in event:  # a chunk with new tokens
                arrivals.append(now)
            m = re.search(rb'"completion_tokens":(\d+)', event)
            if m:
                n_tokens = int(m.group(1))
    sock.close()
    return t0, arrivals, n_tokens


def run_python(port, jobs, n_clients, tokens):
    """The jobs over n_clients Python threads: (results, wall)."""
    results, lock = [], threading.Lock()

    def client(k):
        for i in range(k, len(jobs), n_clients):
            r = stream(port, jobs[i], tokens)
            with lock:
                results.append(r)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - t0


def request_body(prompt, tokens):
    return json.dumps({"prompt": prompt, "max_tokens": tokens, "temperature": 0, "stream": True,
                       "return_tokens": True})


def run_c(clients_binary, port, jobs, n_clients, tokens):
    """The jobs through `lzn-bench clients` (C threads): (results, wall)."""
    out = subprocess.run([clients_binary, "clients", "--port", str(port), "--clients", str(n_clients)],
                         input="\n".join(request_body(p, tokens) for p in jobs) + "\n",
                         capture_output=True, text=True, check=True).stdout
    results, wall = [], None
    for line in out.splitlines():
        r = json.loads(line)
        if "wall" in r:
            wall = r["wall"]
        else:
            results.append((r["t0"], r["arrivals"], r["tokens"]))
    return results, wall


def run(port, jobs, n_clients, tokens, clients_binary=None):
    """Runs jobs (prompts) over n_clients client threads (C ones with
    clients_binary, else Python's); returns the stats."""
    if clients_binary:
        results, wall = run_c(clients_binary, port, jobs, n_clients, tokens)
    else:
        results, wall = run_python(port, jobs, n_clients, tokens)
    n_tokens = sum(n for _, _, n in results)
    ttft = [a[0] - s for s, a, _ in results if a]
    # Per token: each request's time from its first text to its last over the
    # tokens in between; stalls: the longest waits between two events.
    per_token = [(a[-1] - a[0]) / (n - 1) for _, a, n in results if len(a) > 1 and n > 1]
    gaps = [b - a for _, arr, _ in results for a, b in zip(arr, arr[1:])]
    return {"clients": n_clients, "requests": len(results), "tokens": n_tokens, "seconds": wall,
            "tokens_per_s": n_tokens / wall, "ttft_p50_ms": 1e3 * percentile(ttft, 50),
            "ttft_p99_ms": 1e3 * percentile(ttft, 99), "token_p50_ms": 1e3 * percentile(per_token, 50),
            "token_p99_ms": 1e3 * percentile(per_token, 99), "event_gap_p99_ms": 1e3 * percentile(gaps, 99)}


TEXTS = ["The meaning of life is", "A journey of a thousand miles", "Q: What is a computer?\nA:", "You will be",
         "Never trust", "Today is a good day to", "The best way to learn", "Love is", "It is easier to"]


# Each run's prompts are of their own family: a slot keeps its last prompt
# cached, and a request that found its whole prompt there (from the warm-up,
# an earlier run, or the other column's run of the same requests) would skip
# its prefill in one column and not in the other. Two families share at most
# a first token (synthetic), or nothing (text).
WARM_UP = 0
# Each family's step between a prompt's tokens: odd, not a multiple of 5, so
# coprime with the 200 ids the synthetic prompts draw from.
FAMILY_STEPS = [k for k in range(13, 1000, 2) if k % 5 != 0]


def prompt(i, n_tokens, synthetic, family):
    """Request i's prompt of a family: text (the server tokenizes it), or
    token ids for a synthetic model, which has no tokenizer."""
    if synthetic:
        return [(7 * i + FAMILY_STEPS[family] * k + 1) % 200 + 32 for k in range(n_tokens)]
    return "%s) %d. %s" % (chr(ord("a") + family), i, TEXTS[i % len(TEXTS)])


def metrics(port):
    """The server's /metrics as {name: value} (unlabelled samples only)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as reply:
        text = reply.read().decode()
    values = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#") and "{" not in parts[0]:
            values[parts[0]] = float(parts[1])
    return values


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default=os.path.join(ROOT, "build", "lzn-server"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "tiny-opt"))
    ap.add_argument("--synthetic", help="a synthetic shape for lzn-bench export (e.g. relullama-7b)")
    ap.add_argument("--layers", type=int, default=4, help="--synthetic: layers to write")
    ap.add_argument("--type", default="q4_0", help="--synthetic: weight type")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--requests", type=int, default=8, help="requests per client")
    ap.add_argument("--tokens", type=int, default=64, help="tokens per request")
    ap.add_argument("--prompt-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mode", default="auto")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="one more argument for lzn-server (repeat for several; e.g. --server-arg=--no-mmap)")
    ap.add_argument("--client", default="c", choices=["c", "python"],
                    help="c (default): `lzn-bench clients` beside the server; python: threads in this script")
    ap.add_argument("-o", dest="output", default="md", choices=["md", "json"])
    a = ap.parse_args()
    clients_binary = None
    if a.client == "c":
        clients_binary = os.path.join(os.path.dirname(a.server), "lzn-bench")
        if not os.path.exists(clients_binary):
            sys.exit("serve.py: %s not found (build it, or --client python)" % clients_binary)
    clients = [int(c) for c in a.clients.split(",")]
    model, tmp = a.model, None
    if a.synthetic:
        tmp = tempfile.mkdtemp(prefix="lzn-serve-bench-")
        model = os.path.join(tmp, a.synthetic + ".gguf")
        bench = os.path.join(os.path.dirname(a.server), "lzn-bench")
        subprocess.run([bench, "export", "--synthetic", a.synthetic, "--type", a.type, "--layers", str(a.layers),
                        model], check=True, stdout=subprocess.DEVNULL)
    load_before = os.getloadavg()[0]
    server = Server(a.server, model, max(clients), ["--threads", str(a.threads), "--mode", a.mode] + a.server_arg)
    rows = []
    try:
        # Warm-up: the first batch of each size pays for oneDNN's kernels being made.
        for n in clients:
            run(server.port, [prompt(i, a.prompt_tokens, a.synthetic, WARM_UP) for i in range(n)], n, a.tokens,
                clients_binary)
        for j, n in enumerate(clients):
            jobs = [prompt(i, a.prompt_tokens, a.synthetic, 1 + 2 * j) for i in range(n * a.requests)]
            before = metrics(server.port)
            together = run(server.port, jobs, n, a.tokens, clients_binary)
            after = metrics(server.port)
            steps = after["lzn_batch_steps_total"] - before["lzn_batch_steps_total"]
            if steps > 0:
                decode = after["lzn_decode_seconds_total"] - before["lzn_decode_seconds_total"]
                together["step_ms"] = 1e3 * decode / steps
                together["mean_batch"] = (after["lzn_batch_tokens_total"] - before["lzn_batch_tokens_total"]) / steps
                together["decode_share"] = decode / together["seconds"]
                together["prefill_share"] = (after["lzn_prefill_seconds_total"] -
                                             before["lzn_prefill_seconds_total"]) / together["seconds"]
            alone_jobs = [prompt(i, a.prompt_tokens, a.synthetic, 2 + 2 * j) for i in range(n * a.requests)]
            alone = run(server.port, alone_jobs, 1, a.tokens, clients_binary)
            together["sequential_tokens_per_s"] = alone["tokens_per_s"]
            together["speedup"] = together["tokens_per_s"] / alone["tokens_per_s"]
            rows.append(together)
    finally:
        server.stop()
        if tmp:
            for f in os.listdir(tmp):
                os.remove(os.path.join(tmp, f))
            os.rmdir(tmp)
    step = rows[0].get("step_ms") if rows and rows[0]["clients"] == 1 else None
    report = {"model": a.synthetic or os.path.basename(model.rstrip("/")), "mode": a.mode, "threads": a.threads,
              "client": a.client,
              "load_average": [load_before, os.getloadavg()[0]], "rows": rows}
    if step:
        report["library_step_ms"] = step
        report["overhead_per_token"] = rows[0]["token_p50_ms"] / step - 1
    if a.output == "json":
        print(json.dumps(report, indent=1))
        return
    print("model %s, mode %s, %d thread(s), %d tokens per request, %s clients, load average %.1f -> %.1f\n" % (
        report["model"], a.mode, a.threads, a.tokens, a.client, load_before, report["load_average"][1]))
    print("| clients | requests | tokens | t/s together | t/s one at a time | speed-up | TTFT p50 ms | "
          "TTFT p99 ms | per-token p50 ms | per-token p99 ms | event gap p99 ms | mean batch | "
          "library step ms | decode share | prefill share |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %d | %d | %d | %.0f | %.0f | %.2fx | %.2f | %.2f | %.3f | %.3f | %.2f | %.1f | %.3f | %.0f %% | %.0f %% |" % (
            r["clients"], r["requests"], r["tokens"], r["tokens_per_s"], r["sequential_tokens_per_s"],
            r["speedup"], r["ttft_p50_ms"], r["ttft_p99_ms"], r["token_p50_ms"], r["token_p99_ms"],
            r["event_gap_p99_ms"], r.get("mean_batch", 0), r.get("step_ms", 0), 100 * r.get("decode_share", 0),
            100 * r.get("prefill_share", 0)))
    if "library_step_ms" in report:
        print("\nN = 1: %.3f ms per token through the server, %.3f ms per decode step inside it: "
              "HTTP + JSON + SSE overhead %+.1f %%" % (rows[0]["token_p50_ms"], report["library_step_ms"],
                                                     100 * report["overhead_per_token"]))


if __name__ == "__main__":
    main()
