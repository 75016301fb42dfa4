"""lzn-server over a real socket, driven by curl and by the official OpenAI
client for Node, against what the library alone answers
(build/lzn-server-reference).

Run by `make test-server` (part of `make test`):
    LZN_SERVER=build/lzn-server LZN_SERVER_REFERENCE=build/lzn-server-reference LZN_BENCH=build/lzn-bench \
        python3 -m pytest -q tests/server
LZN_SERVER_SOAK=SECONDS adds a soak of that length (make asan / make tsan
run the sanitized server with one). LZN_SERVER_SLOW=N multiplies every
timeout (sanitizers).

Replies at temperature 0 are compared token for token (the tiny models are
byte-level: a byte is a token). A batched step equals the same step alone
only within fp32 rounding (and so do a chunked prefill and a reused
prefix), so a reply may leave the reference only where the reference's two
best logits are within TIE_GAP, and from there on the texts are different
and compared no further; MAX_TIE_SHARE bounds how often, so a systematic
error cannot hide behind the rule.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVER = os.environ.get("LZN_SERVER", os.path.join(ROOT, "build", "lzn-server"))
REFERENCE = os.environ.get("LZN_SERVER_REFERENCE", os.path.join(ROOT, "build", "lzn-server-reference"))
BENCH = os.environ.get("LZN_BENCH", os.path.join(ROOT, "build", "lzn-bench"))
SLOW = float(os.environ.get("LZN_SERVER_SLOW", "1"))
SOAK_SECONDS = float(os.environ.get("LZN_SERVER_SOAK", "0"))
NPM_DIR = os.path.join(os.path.dirname(SERVER), "npm")
OPENAI_VERSION = "4.95.0"
TIE_GAP = 1e-3
MAX_TIE_SHARE = 0.05
MODELS = {"tiny-opt": os.path.join(ROOT, "models", "tiny-opt"),
          "tiny-llama": os.path.join(ROOT, "models", "tiny-llama")}
PROMPTS = ["The meaning of life is", "A journey of a thousand miles", "Q: What is a computer?\nA:",
           "You will be", "Never trust", "Today is a good day to", "The best way to learn",
           "Love is", "It is easier to", "Time flies", "Once upon a time", "In the beginning"]


class Server:
    """An lzn-server on a free loopback port; stop() checks it exits 0."""

    def __init__(self, model, *args):
        # stderr goes to a file, not a pipe: nobody reads a pipe while the
        # clients run, and libmicrohttpd logs a line per aborted stream; a
        # soak's few hundred filled the pipe, the logging threads blocked on
        # it, and SIGTERM then waited for them forever (CI, stop 41).
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([SERVER, "-m", MODELS.get(model, model), "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.lines = []
        line = self.proc.stdout.readline()
        assert "listening on http://" in line, line + self.stderr()
        self.port = int(line.split("http://127.0.0.1:")[1].split()[0])
        self.url = "http://127.0.0.1:%d" % self.port
        line = self.proc.stdout.readline()
        assert "ready" in line, line + self.stderr()
        self.drain = threading.Thread(target=self._read, daemon=True)
        self.drain.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def stderr(self):
        """What the server has written to stderr so far."""
        self.err.seek(0)
        return self.err.read()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("lzn-server did not stop within %g s" % (timeout * SLOW))
        err = self.stderr()
        assert code == 0, "lzn-server exited %d: %s" % (code, err[-3000:])
        return err


def curl(url, path, body=None, headers=(), method=None, timeout=60):
    """(status, body text) of one request made by curl."""
    cmd = ["curl", "-sS", "-N", "--max-time", str(timeout * SLOW), "-o", "-", "-w", "\n%{http_code}"]
    if method:
        cmd += ["-X", method]
    for h in headers:
        cmd += ["-H", h]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    out = subprocess.run(cmd + [url + path], input=data, capture_output=True, timeout=timeout * SLOW + 10)
    text = out.stdout.decode("utf-8")
    text, _, code = text.rpartition("\n")
    return int(code or 0), text


def curl_many(url, requests, timeout=120):
    """[(status, body)] of requests [(path, body)] sent one after another by
    one curl process over one kept-alive connection (--next)."""
    mark = "\n<<<lzn-test %{http_code}>>>\n"
    cmd = ["curl", "-sS", "-N", "--max-time", str(timeout * SLOW)]
    for i, (path, body) in enumerate(requests):
        if i:
            cmd.append("--next")
        cmd += ["-sS", "-N", "-w", mark, "-H", "Content-Type: application/json", "--data-binary",
                json.dumps(body), url + path]
    out = subprocess.run(cmd, capture_output=True, timeout=timeout * SLOW + 10).stdout.decode("utf-8")
    parts = out.split("\n<<<lzn-test ")
    answers = []
    for k, part in enumerate(parts[:-1]):
        body = part if k == 0 else part.split(">>>\n", 1)[1]
        code = int(parts[k + 1].split(">>>", 1)[0])
        answers.append((code, body))
    assert len(answers) == len(requests), out[-500:]
    return answers


def sse_events(text):
    """The JSON payloads of a server-sent-events body, and whether [DONE] ended it."""
    events, done = [], False
    for block in text.split("\n\n"):
        if not block.strip() or block.startswith(":"):  # a comment: keep-alive
            continue
        assert block.startswith("data: "), block
        payload = block[6:]
        assert not done, "data after [DONE]"
        if payload == "[DONE]":
            done = True
        else:
            events.append(json.loads(payload))
    return events, done


def reference(model, requests):
    lines = "".join(json.dumps(r) + "\n" for r in requests)
    out = subprocess.run([REFERENCE, MODELS[model]], input=lines, capture_output=True, text=True,
                         timeout=300 * SLOW, check=True)
    return [json.loads(l) for l in out.stdout.splitlines()]


class Ties:
    def __init__(self):
        self.n, self.ties = 0, 0

    def check(self, served, ref, label):
        """served: the reply's text; ref: the reference's answer."""
        self.n += 1
        want = bytes.fromhex(ref["text_hex"]).decode("utf-8", "replace")
        if served == want:
            return
        common = 0
        while common < min(len(served), len(want)) and served[common] == want[common]:
            common += 1
        t = len(served[:common].encode("utf-8"))  # byte-level: the token where they part
        gap = ref["gaps"][t] if t < len(ref["gaps"]) else float("inf")
        assert gap < TIE_GAP, "%s: the reply leaves the library's at token %d (gap %.3g, not a near-tie)\n" \
            "served: %r\nalone:  %r" % (label, t, gap, served, want)
        self.ties += 1

    def done(self):
        assert self.ties <= max(1, MAX_TIE_SHARE * self.n), "%d of %d replies parted at a near-tie" % (
            self.ties, self.n)


def completion_request(prompt, max_tokens, stream=False, **extra):
    return {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": stream, **extra}


def chat_request(content, max_tokens, stream=False, **extra):
    return {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}],
            "max_tokens": max_tokens, "temperature": 0, "stream": stream, **extra}


def served_text(status, body, chat, stream):
    """The reply's text and finish_reason, checking the response's shape."""
    assert status == 200, body
    if not stream:
        r = json.loads(body)
        assert r["object"] == ("chat.completion" if chat else "text_completion")
        c = r["choices"][0]
        assert r["usage"]["total_tokens"] == r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"]
        return (c["message"]["content"] if chat else c["text"]), c["finish_reason"], r
    events, done = sse_events(body)
    assert done, "no data: [DONE]: " + body[-500:]
    text, finish = "", None
    for e in events:
        assert "error" not in e, e
        assert e["object"] == ("chat.completion.chunk" if chat else "text_completion")
        c = e["choices"][0]
        text += (c["delta"].get("content") or "") if chat else c["text"]
        finish = c["finish_reason"] or finish
    assert "usage" in events[-1], "the final chunk carries usage"
    return text, finish, events[-1]


@pytest.fixture(scope="module", params=["tiny-opt", "tiny-llama"])
def server(request):
    s = Server(request.param, "--slots", "8", "--prefill-chunk", "16")
    s.model = request.param
    yield s
    s.stop()


# ------------------------------------------------------------------ replies

def test_health_models_metrics(server):
    status, body = curl(server.url, "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = curl(server.url, "/v1/models")
    assert status == 200 and json.loads(body)["data"][0]["id"] == server.model
    status, body = curl(server.url, "/metrics")
    assert status == 200
    for name in ["lzn_requests_total", "lzn_prompt_tokens_total", "lzn_tokens_generated_total",
                 "lzn_tokens_per_second", "lzn_slots_busy", "lzn_queue_length", "lzn_mlp_active_fraction",
                 "lzn_mlp_bytes_saved_total", 'lzn_http_requests_total{code="200"}']:
        assert "\n" + name + " " in "\n" + body, name


def metric_value(body, name):
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in /metrics" % name)


def packs_on_this_cpu():
    """Packed copies need the AVX512-VNNI kernels (lzn_model_params.pack_budget)."""
    isa_list = os.path.join(os.path.dirname(SERVER), "lzn-isa-list")
    return "avx512vnni" in subprocess.run([isa_list], capture_output=True, text=True, check=True).stdout.split()


@pytest.mark.parametrize("args,packs", [(["--type", "q8_0", "--pack-budget", "0"], False),
                                        (["--type", "q8_0"], True), (["--type", "f16"], False)])
def test_type_and_pack_budget(args, packs):
    """--pack-budget 0 makes no packed copies; /metrics says what was made.
    (The tiny models' rows of 128 weights cannot hold a K-quant's 256-weight
    super-blocks; test_bad_options_are_usage_errors checks --type names them.)"""
    s = Server("tiny-opt", "--slots", "2", *args)
    try:
        status, body = curl(s.url, "/metrics")
        assert status == 200, body
        assert metric_value(body, "lzn_model_weight_bytes") > 0
        packed = metric_value(body, "lzn_model_packed_bytes")
        if packs and packs_on_this_cpu():
            assert packed > 0, body
        else:
            assert packed == 0, body
        status, body = curl(s.url, "/v1/completions", completion_request("Once upon a time", 8))
        assert status == 200 and json.loads(body)["usage"]["completion_tokens"] == 8, body
    finally:
        s.stop()


@pytest.mark.parametrize("args,says", [(["--type", "q9_9"], "q4_k"), (["--pack-budget", "-1"], "--pack-budget"),
                                       (["--pack-budget", "lots"], "--pack-budget"),
                                       (["--predictor-type", "q9_9"], "--predictor-type"),
                                       (["--http-nice", "20"], "--http-nice")])
def test_bad_options_are_usage_errors(args, says):
    out = subprocess.run([SERVER, "-m", MODELS["tiny-opt"], "--port", "0", *args], capture_output=True,
                         text=True, timeout=30 * SLOW)
    assert out.returncode == 2 and says in out.stderr, out.stderr


@pytest.mark.parametrize("chat", [False, True])
@pytest.mark.parametrize("stream", [False, True])
def test_curl_replies_equal_the_library_alone(server, chat, stream):
    ties = Ties()
    n = 6
    reqs = [(chat_request if chat else completion_request)(PROMPTS[i], 12 + 7 * i, stream) for i in range(n)]
    refs = reference(server.model, [{k: r[k] for k in ("prompt", "messages", "max_tokens") if k in r}
                                    for r in reqs])
    for req, ref in zip(reqs, refs):
        status, body = curl(server.url, "/v1/chat/completions" if chat else "/v1/completions", req)
        text, finish, last = served_text(status, body, chat, stream)
        ties.check(text, ref, "%s chat=%s stream=%s" % (server.model, chat, stream))
        if text == bytes.fromhex(ref["text_hex"]).decode("utf-8", "replace"):
            assert finish == ref["finish"]
            assert last["usage"]["prompt_tokens"] == ref["n_prompt"]
            assert last["usage"]["completion_tokens"] == len(ref["tokens"])
    ties.done()


def test_prompt_as_token_ids_and_prefix_reuse(server):
    prompt = PROMPTS[0] + " and so on, and so on"
    ref = reference(server.model, [{"prompt": prompt, "max_tokens": 20}])[0]
    ids = list(prompt.encode())
    status, body = curl(server.url, "/v1/completions", completion_request(ids, 20))
    first = json.loads(body)
    status, body = curl(server.url, "/v1/completions", completion_request(prompt, 20))
    second = json.loads(body)
    ties = Ties()
    for r in (first, second):
        ties.check(r["choices"][0]["text"], ref, "token ids / reuse")
    # The second starts from the first's cache: all of the prompt but its last token.
    assert second["lazyneuron"]["prompt_tokens_reused"] == len(ids) - 1, second


def test_return_tokens(server):
    """llama-server's return_tokens: the reply's ids (here, byte-level, its bytes)."""
    ref = reference(server.model, [{"prompt": PROMPTS[3], "max_tokens": 15}])[0]
    status, body = curl(server.url, "/v1/completions", completion_request(PROMPTS[3], 15, return_tokens=True))
    choice = json.loads(body)["choices"][0]
    assert choice["tokens"] == list(choice["text"].encode()), choice
    status, body = curl(server.url, "/v1/completions", completion_request(PROMPTS[3], 15, True, return_tokens=True))
    events, done = sse_events(body)
    streamed = [t for e in events for t in e["choices"][0].get("tokens", [])]
    assert done and streamed == choice["tokens"], (streamed, choice["tokens"])
    ties = Ties()
    ties.check(choice["text"], ref, "return_tokens")


def test_stop_strings(server):
    ref = reference(server.model, [{"prompt": PROMPTS[2], "max_tokens": 40}])[0]
    text = bytes.fromhex(ref["text_hex"]).decode("utf-8", "replace")
    stop = text[10:13]
    cut = text[:text.index(stop)]
    for stream in (False, True):
        status, body = curl(server.url, "/v1/completions",
                            completion_request(PROMPTS[2], 40, stream, stop=[stop, "\x01never"]))
        served, finish, _ = served_text(status, body, False, stream)
        assert served == cut and finish == "stop", (served, cut, stop)


def test_sixteen_clients_twenty_requests_each(server):
    """16 concurrent curl clients x 20 requests (streamed and not, both
    endpoints; each client one curl process, its requests over one kept-alive
    connection), every reply equal to the same request alone."""
    rng = random.Random(21)
    jobs = []
    for c in range(16):
        for k in range(20):
            chat, stream = rng.random() < 0.5, rng.random() < 0.5
            make = chat_request if chat else completion_request
            jobs.append((c, chat, stream, make(rng.choice(PROMPTS) + " " * rng.randrange(3),
                                               rng.randrange(4, 40), stream)))
    refs = reference(server.model, [{k: j[3][k] for k in ("prompt", "messages", "max_tokens") if k in j[3]}
                                    for j in jobs])
    results = [None] * len(jobs)

    def client(c):
        mine = [i for i, job in enumerate(jobs) if job[0] == c]
        answers = curl_many(server.url, [("/v1/chat/completions" if jobs[i][1] else "/v1/completions", jobs[i][3])
                                         for i in mine])
        for i, answer in zip(mine, answers):
            results[i] = answer

    threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ties = Ties()
    for job, ref, res in zip(jobs, refs, results):
        text, _, _ = served_text(res[0], res[1], job[1], job[2])
        ties.check(text, ref, "concurrent chat=%s stream=%s" % (job[1], job[2]))
    ties.done()
    status, body = curl(server.url, "/metrics")
    steps = float(body.split("\nlzn_batch_steps_total ")[1].split()[0])
    tokens = float(body.split("\nlzn_batch_tokens_total ")[1].split()[0])
    assert tokens > 1.5 * steps, "the load never batched (mean batch %.2f)" % (tokens / steps)
    decode = float(body.split("\nlzn_decode_seconds_total ")[1].split()[0])
    assert 0 < decode < time.time() - t0 + 60, "decode seconds %g" % decode  # the server is shared: earlier tests count
    print("320 requests in %.1f s, mean batch %.2f" % (time.time() - t0, tokens / steps))


# ---------------------------------------------------------------- the client

def openai_client():
    """The official openai package in build/npm, installed on first use."""
    module = os.path.join(NPM_DIR, "node_modules", "openai", "package.json")
    if os.path.exists(module) and json.load(open(module))["version"] == OPENAI_VERSION:
        return NPM_DIR
    if not shutil.which("npm") or not shutil.which("node"):
        pytest.skip("npm or node is not installed: the OpenAI client test is skipped")
    os.makedirs(NPM_DIR, exist_ok=True)
    try:
        out = subprocess.run(["npm", "install", "--prefix", NPM_DIR, "--no-audit", "--no-fund",
                              "--no-save", "openai@" + OPENAI_VERSION], capture_output=True, text=True,
                             timeout=180)
    except subprocess.TimeoutExpired:
        pytest.skip("npm install openai@%s timed out: the npm registry is unreachable" % OPENAI_VERSION)
    if out.returncode != 0:
        pytest.skip("npm install openai@%s failed (the npm registry is unreachable?): %s"
                    % (OPENAI_VERSION, out.stderr.strip()[-300:]))
    return NPM_DIR


def run_openai(url, requests, api_key="unused"):
    npm = openai_client()
    script = os.path.join(npm, "openai_client.mjs")
    shutil.copy(os.path.join(ROOT, "tests", "server", "openai_client.mjs"), script)
    out = subprocess.run(["node", script], input=json.dumps({"baseURL": url + "/v1", "apiKey": api_key,
                                                             "requests": requests}),
                         capture_output=True, text=True, timeout=300 * SLOW)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_openai_client(server):
    jobs, refs_in = [], []
    for i, p in enumerate(PROMPTS[:4]):
        for stream in (False, True):
            jobs.append({"kind": "completion", "stream": stream,
                         "params": {"model": server.model, "prompt": p, "max_tokens": 10 + 5 * i, "temperature": 0}})
            refs_in.append({"prompt": p, "max_tokens": 10 + 5 * i})
            msgs = [{"role": "user", "content": p}]
            jobs.append({"kind": "chat", "stream": stream,
                         "params": {"model": server.model, "messages": msgs, "max_tokens": 10 + 5 * i,
                                    "temperature": 0, "stream_options": {"include_usage": True} if stream else None}})
            refs_in.append({"messages": msgs, "max_tokens": 10 + 5 * i})
    for j in jobs:
        j["params"] = {k: v for k, v in j["params"].items() if v is not None}
    jobs.append({"kind": "chat", "stream": False, "params": {"model": server.model, "messages": [],
                                                             "max_tokens": 4}})
    results = run_openai(server.url, jobs)
    refs = reference(server.model, refs_in)
    ties = Ties()
    for job, ref, res in zip(jobs, refs, results):
        assert "error" not in res, res
        ties.check(res["text"], ref, "openai %s stream=%s" % (job["kind"], job["stream"]))
        assert res["usage"]["prompt_tokens"] == ref["n_prompt"], res
    ties.done()
    bad = results[-1]["error"]
    assert bad["status"] == 400 and "messages" in bad["message"], bad


# ----------------------------------------------------------------- bad input

BAD_INPUT = [
    # (what, method, path, body bytes or None, headers, status, error type)
    ("malformed JSON", "POST", "/v1/completions", b'{"prompt": "x",', (), 400, "invalid_request_error"),
    ("not an object", "POST", "/v1/completions", b'["prompt"]', (), 400, "invalid_request_error"),
    ("missing prompt", "POST", "/v1/completions", b'{"max_tokens": 4}', (), 400, "invalid_request_error"),
    ("missing messages", "POST", "/v1/chat/completions", b'{"max_tokens": 4}', (), 400, "invalid_request_error"),
    ("prompt of the wrong type", "POST", "/v1/completions", b'{"prompt": 42}', (), 400, "invalid_request_error"),
    ("max_tokens a string", "POST", "/v1/completions", b'{"prompt": "a", "max_tokens": "4"}', (), 400,
     "invalid_request_error"),
    ("stream a string", "POST", "/v1/completions", b'{"prompt": "a", "stream": "yes"}', (), 400,
     "invalid_request_error"),
    ("max_tokens 0", "POST", "/v1/completions", b'{"prompt": "a", "max_tokens": 0}', (), 400, "invalid_request_error"),
    ("max_tokens -5", "POST", "/v1/completions", b'{"prompt": "a", "max_tokens": -5}', (), 400,
     "invalid_request_error"),
    ("max_tokens beyond the context", "POST", "/v1/completions", b'{"prompt": "a", "max_tokens": 100000}', (), 400,
     "invalid_request_error"),
    ("temperature < 0", "POST", "/v1/completions", b'{"prompt": "a", "temperature": -0.5}', (), 400,
     "invalid_request_error"),
    ("top_p 0", "POST", "/v1/completions", b'{"prompt": "a", "top_p": 0}', (), 400, "invalid_request_error"),
    ("n = 2", "POST", "/v1/completions", b'{"prompt": "a", "n": 2}', (), 400, "invalid_request_error"),
    ("empty messages", "POST", "/v1/chat/completions", b'{"messages": []}', (), 400, "invalid_request_error"),
    ("unknown role", "POST", "/v1/chat/completions", b'{"messages": [{"role": "wizard", "content": "x"}]}', (), 400,
     "invalid_request_error"),
    ("message without content", "POST", "/v1/chat/completions", b'{"messages": [{"role": "user"}]}', (), 400,
     "invalid_request_error"),
    ("image content", "POST", "/v1/chat/completions",
     b'{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}', (), 400,
     "invalid_request_error"),
    ("prompt longer than the context", "POST", "/v1/completions",
     json.dumps({"prompt": "x" * 300}).encode(), (), 400, "invalid_request_error"),
    ("token id out of the vocabulary", "POST", "/v1/completions", b'{"prompt": [1, 2, 999]}', (), 400,
     "invalid_request_error"),
    ("empty prompt", "POST", "/v1/completions", b'{"prompt": ""}', (), 400, "invalid_request_error"),
    ("invalid UTF-8 in the prompt", "POST", "/v1/completions", b'{"prompt": "ab\xff\xfecd"}', (), 400,
     "invalid_request_error"),
    ("a lone surrogate escape", "POST", "/v1/completions", b'{"prompt": "ab\\udc80"}', (), 400,
     "invalid_request_error"),
    ("body over --max-body", "POST", "/v1/completions",
     json.dumps({"prompt": "x" * 70000}).encode(), (), 413, "invalid_request_error"),
    ("unknown route", "GET", "/v1/engines", None, (), 404, "not_found_error"),
    ("unknown route, POST", "POST", "/v2/completions", b"{}", (), 404, "not_found_error"),
    ("wrong method", "GET", "/v1/completions", None, (), 405, "invalid_request_error"),
    ("wrong method on /health", "POST", "/health", b"{}", (), 405, "invalid_request_error"),
    ("slots without --slot-save-path", "POST", "/slots/0?action=save", b'{"filename": "a"}', (), 501,
     "not_supported_error"),
]


@pytest.fixture(scope="module")
def small_server():
    s = Server("tiny-opt", "--slots", "2", "--max-body", "65536")
    yield s
    s.stop()


@pytest.mark.parametrize("row", BAD_INPUT, ids=[r[0] for r in BAD_INPUT])
def test_bad_input(small_server, row):
    what, method, path, body, headers, status, kind = row
    code, text = curl(small_server.url, path, body, headers, method=method)
    assert code == status, "%s: %d %s" % (what, code, text)
    err = json.loads(text)["error"]
    assert err["type"] == kind and err["code"] == status and err["message"], (what, err)
    assert curl(small_server.url, "/health")[0] == 200, "unhealthy after " + what


def test_api_key():
    s = Server("tiny-opt", "--api-key", "s3cret")
    try:
        req = completion_request("Hi", 3)
        for headers in [(), ("Authorization: Bearer wrong",), ("Authorization: Bearer s3cre",),
                        ("Authorization: Bearer s3crett",), ("Authorization: s3cret",)]:
            code, text = curl(s.url, "/v1/completions", req, headers)
            assert code == 401 and json.loads(text)["error"]["type"] == "authentication_error", (headers, text)
            assert curl(s.url, "/metrics", headers=headers)[0] == 401
            assert curl(s.url, "/v1/models", headers=headers)[0] == 401
        assert curl(s.url, "/health")[0] == 200
        assert curl(s.url, "/v1/completions", req, ["Authorization: Bearer s3cret"])[0] == 200
    finally:
        s.stop(signal.SIGINT)  # SIGINT drains and exits 0 as SIGTERM does


def test_api_key_with_the_openai_client():
    s = Server("tiny-opt", "--api-key", "s3cret")
    try:
        job = {"kind": "completion", "stream": False, "params": {"model": "m", "prompt": "Hi", "max_tokens": 3}}
        wrong, right = run_openai(s.url, [job], "wrong")[0], run_openai(s.url, [job], "s3cret")[0]
        assert wrong["error"]["status"] == 401, wrong
        assert "error" not in right and right["usage"]["completion_tokens"] == 3, right
    finally:
        s.stop()


def metric(url, name):
    return float(curl(url, "/metrics")[1].split("\nlzn_%s " % name)[1].split()[0])


def wait_until(pred, seconds, what):
    deadline = time.time() + seconds * SLOW
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("not within %g s: %s" % (seconds * SLOW, what))


def raw_stream(port, body):
    """A streaming request on a raw socket (so the test can walk away)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(30 * SLOW)
    data = json.dumps(body).encode()
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    return sock


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory):
    """A model whose requests take seconds: one layer of the 7B shape
    (~200 tokens/s here), 2048 positions, no tokenizer (prompts are token
    ids). The tiny models decode their 256 tokens in ~12 ms, less than a
    client needs to read three events and close: a test of cancelling or
    queueing must not race the replies' end."""
    model = str(tmp_path_factory.mktemp("slow") / "relullama-7b-1.gguf")
    subprocess.run([BENCH, "export", "--synthetic", "relullama-7b", "--type", "q4_0", "--layers", "1", model],
                   check=True, stdout=subprocess.DEVNULL)
    return model


@pytest.fixture(scope="module")
def slow_server(slow_model):
    s = Server(slow_model, "--slots", "2")
    yield s
    s.stop()


def test_client_aborted_mid_stream_frees_its_slot(slow_server):
    url, port = slow_server.url, slow_server.port
    failed0 = metric(url, "requests_failed_total")
    generated0 = metric(url, "tokens_generated_total")
    sock = raw_stream(port, completion_request([1, 2, 3], 2000, True))
    got = b""
    while got.count(b"data: ") < 3:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the stream"
        got += chunk
    assert b"200 OK" in got
    sock.close()
    wait_until(lambda: metric(url, "slots_busy") == 0, 5, "the aborted request's slot is free")
    assert metric(url, "requests_failed_total") == failed0 + 1
    # Long before its 2000 tokens (10 s): the cancel, not the end, freed it.
    assert metric(url, "tokens_generated_total") - generated0 < 1000
    assert curl(url, "/health")[0] == 200
    status, body = curl(url, "/v1/completions", completion_request([4, 5], 5))
    assert status == 200
    # A client that hangs up is routine, not an "application error" in the log.
    assert "application error" not in slow_server.stderr(), slow_server.stderr()


def thread_nices(pid, name):
    """The nice values of process pid's threads called name (/proc/PID/task/TID/stat:
    field 19, counted after the parenthesised name)."""
    nices = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        if stat[stat.index("(") + 1:stat.rindex(")")] == name:
            nices.append(int(stat[stat.rindex(")") + 2:].split()[16]))
    return nices


def test_connection_threads_run_below_the_decode_thread(slow_server):
    """--http-nice (default 19): a streaming connection's thread runs at that
    nice value, the decode loop's threads at the process's own."""
    sock = raw_stream(slow_server.port, completion_request([1, 2, 3], 400, True))
    try:
        got = b""
        while got.count(b"data: ") < 2:
            chunk = sock.recv(4096)
            assert chunk, "the server closed the stream"
            got += chunk
        pid = slow_server.proc.pid
        assert thread_nices(pid, "MHD-connection") and all(n == 19 for n in thread_nices(pid, "MHD-connection")), \
            thread_nices(pid, "MHD-connection")
        assert thread_nices(pid, "lzn-server") and all(n == 0 for n in thread_nices(pid, "lzn-server")), \
            thread_nices(pid, "lzn-server")
    finally:
        sock.close()
    wait_until(lambda: metric(slow_server.url, "slots_busy") == 0, 5, "the stream's slot is free")


def test_a_thousand_connections_opened_and_dropped(small_server):
    for i in range(1000):
        s = socket.create_connection(("127.0.0.1", small_server.port))
        if i % 3 == 1:
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"pro")
        elif i % 3 == 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        s.close()
    wait_until(lambda: curl(small_server.url, "/health")[0] == 200, 10, "healthy after 1000 dropped connections")
    assert metric(small_server.url, "slots_busy") == 0


def test_stalled_request_times_out_without_a_slot():
    s = Server("tiny-opt", "--timeout", "1")
    try:
        heads = socket.create_connection(("127.0.0.1", s.port))
        heads.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")  # headers never end
        body = socket.create_connection(("127.0.0.1", s.port))
        body.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\"")
        for sock in (heads, body):
            sock.settimeout(10 * SLOW)
            t0 = time.time()
            assert sock.recv(4096) == b"", "the server answered a stalled request"
            assert time.time() - t0 < 8 * SLOW
            sock.close()
        assert metric(s.url, "requests_total") == 0 and metric(s.url, "prompt_tokens_total") == 0
        assert curl(s.url, "/health")[0] == 200
    finally:
        s.stop()


def read_response(sock):
    """(status, headers, body) of one HTTP/1.1 response read to the end."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep and b"Content-Length:" in head:
            n = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            if len(rest) >= n:
                break
        if sep and data.endswith(b"0\r\n\r\n"):
            break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    return int(lines[0].split()[1]), lines[1:], body


def test_full_queue_is_503_with_retry_after(slow_model):
    """One slot, a queue of one: of twelve requests sent at once, the first
    runs, the second waits, and (while they last: 0.5 s each) the others are
    refused."""
    s = Server(slow_model, "--slots", "1", "--queue", "1")
    try:
        socks = [raw_stream(s.port, completion_request([1, 2, i], 100)) for i in range(12)]
        answers = [read_response(sock) for sock in socks]
        codes = [a[0] for a in answers]
        assert codes.count(200) == 2 and codes.count(503) == 10, codes
        for code, headers, body in answers:
            if code == 503:
                assert "Retry-After: 1" in headers, headers
                assert json.loads(body)["error"]["type"] == "unavailable_error"
        for sock in socks:
            sock.close()
        assert metric(s.url, "requests_rejected_total") == codes.count(503)
        assert curl(s.url, "/health")[0] == 200
    finally:
        s.stop()


def test_slot_save_and_restore_across_restarts(tmp_path):
    prompt = "A long shared system prompt, then a question: " + PROMPTS[2]
    ref = reference("tiny-llama", [{"prompt": prompt, "max_tokens": 12}])[0]
    s = Server("tiny-llama", "--slots", "2", "--slot-save-path", str(tmp_path))
    try:
        status, body = curl(s.url, "/v1/completions", completion_request(prompt, 12))
        slot = json.loads(body)["lazyneuron"]["slot"]
        status, body = curl(s.url, "/slots/%d?action=save" % slot, {"filename": "conv.bin"})
        saved = json.loads(body)
        assert status == 200 and saved["n_saved"] == len(prompt) + 11, body
        for bad, want in [({"filename": "../x"}, 400), ({"filename": "nope.bin"}, 400), ({}, 400)]:
            status, body = curl(s.url, "/slots/0?action=restore", bad)
            assert status == want and json.loads(body)["error"], body
        assert curl(s.url, "/slots/7?action=save", {"filename": "a"})[0] == 404
        assert curl(s.url, "/slots/0?action=erase", {"filename": "a"})[0] == 400
    finally:
        s.stop()
    with open(tmp_path / "corrupt.bin", "wb") as f:
        f.write(open(tmp_path / "conv.bin", "rb").read()[:-7] + b"garbage")
    s = Server("tiny-llama", "--slots", "2", "--slot-save-path", str(tmp_path))
    try:
        status, body = curl(s.url, "/slots/1?action=restore", {"filename": "corrupt.bin"})
        assert status == 400 and "lzn_context_state_load" in json.loads(body)["error"]["message"], body
        status, body = curl(s.url, "/slots/1?action=restore", {"filename": "conv.bin"})
        assert status == 200 and json.loads(body)["n_restored"] == saved["n_saved"], body
        status, body = curl(s.url, "/v1/completions", completion_request(prompt, 12))
        r = json.loads(body)
        assert r["lazyneuron"]["prompt_tokens_reused"] == len(prompt) - 1, r
        ties = Ties()
        ties.check(r["choices"][0]["text"], ref, "after restore")
    finally:
        s.stop()


def test_shutdown_under_load():
    """SIGTERM while 12 clients keep sending: every answer is whole (a
    complete reply, a stream that ends in [DONE] or an error event, or a
    503), the server exits 0 within the drain bound, and then refuses."""
    s = Server("tiny-opt", "--slots", "4", "--drain-timeout", "2")
    results, stop = [], threading.Event()

    def client(i):
        k = 0
        while not stop.is_set():
            req = completion_request("Load %d.%d" % (i, k), 200 if i % 2 else 20, i % 3 == 0)
            code, body = curl(s.url, "/v1/completions", req)
            if code == 0:  # refused: the server no longer listens
                break
            results.append((code, body))
            k += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    wait_until(lambda: len(results) >= 12, 30, "requests answered")
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    s.stop(timeout=20)
    stop.set()
    for t in threads:
        t.join()
    assert time.time() - t0 < 15 * SLOW
    for code, body in results:
        if code == 200 and body.startswith("data: "):
            events, done = sse_events(body)
            assert done or "error" in events[-1], body[-300:]
        else:
            assert code in (200, 503), (code, body)
            json.loads(body)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()


@pytest.mark.skipif(SOAK_SECONDS <= 0, reason="LZN_SERVER_SOAK not set")
def test_soak():
    s = Server("tiny-llama", "--slots", "4", "--queue", "8", "--prefill-chunk", "8")
    stop_at = time.time() + SOAK_SECONDS
    errors, counts = [], []

    def client(c):
        try:
            soak_client(c)
        except Exception as e:  # a broken client fails the soak, not just its thread
            errors.append(("client %d" % c, repr(e)))

    def soak_client(c):
        rng = random.Random(c)
        n = 0
        while time.time() < stop_at:
            n += 1
            chat, stream = rng.random() < 0.5, rng.random() < 0.5
            req = (chat_request if chat else completion_request)(rng.choice(PROMPTS), rng.randrange(1, 60), stream,
                                                                 temperature=rng.choice([0, 0.8]))
            if rng.random() < 0.1:
                sock = raw_stream(s.port, completion_request(rng.choice(PROMPTS), 100, True))
                sock.recv(100)
                sock.close()
                continue
            code, body = curl(s.url, "/v1/chat/completions" if chat else "/v1/completions", req)
            if code not in (200, 503):
                errors.append((code, body))
            elif code == 200:
                served_text(code, body, chat, stream)  # a whole, well-formed reply
        counts.append(n)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_until(lambda: curl(s.url, "/health")[0] == 200, 30, "healthy after the soak")
    s.stop(timeout=60)
    assert not errors, errors[:3]
    assert len(counts) == 6 and sum(counts) >= 6, counts
