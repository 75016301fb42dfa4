"""lzn-convert (tools/convert/lzn_convert.py, tools/convert/hf_tokenizer.py) and lzn-quantize, end to end:
a folder and its GGUF give the same logits and the same greedy text; tokenizers of every
kind survive the trip (the GGUF tokenizes as the folder, or as the reference ids say); the
chat template is carried; every bad input is one line naming the file, exit 1, no
traceback and no file left. Needs numpy only (no torch).

    LAZYNEURON_LIB=build/liblazyneuron.so.0 /usr/bin/python3 -m pytest -q tools/tests
"""

import ctypes
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools" / "convert"
DATA = REPO / "tests" / "data"
sys.path.insert(0, str(TOOLS))
sys.path.insert(0, str(REPO / "python"))

import hf_tokenizer  # noqa: E402
import lazyneuron as lzn  # noqa: E402
from gguf_read import read_gguf  # noqa: E402
from gguf_write import gguf_bytes, typed  # noqa: E402


def build_dir():
    lib = os.environ.get("LAZYNEURON_LIB")
    return Path(lib).resolve().parent if lib else REPO / "build"


def tool(name):
    """build/NAME beside the library under test, built if missing."""
    build = build_dir()
    rel = os.path.relpath(build, REPO)
    subprocess.run(["make", "--no-print-directory", "-s", f"BUILD={rel}", f"{rel}/{name}"], cwd=REPO,
                   check=True)
    return build / name


def convert(*args, **kw):
    return subprocess.run([sys.executable, str(TOOLS / "lzn_convert.py")] + [str(a) for a in args],
                          capture_output=True, timeout=300, **kw)


def quantize(*args):
    return subprocess.run([str(tool("lzn-quantize"))] + [str(a) for a in args], capture_output=True,
                          timeout=300)


def run(*args, **kw):
    return subprocess.run([str(tool("lzn-run"))] + [str(a) for a in args], capture_output=True,
                          timeout=120, **kw)


def logits(path, tokens, weight_type="as_stored"):
    with lzn.Model(path, weight_type=weight_type) as model:
        with model.context(mlp_mode="sparse", n_threads=1, kv_type="f32", use_predictor=False) as ctx:
            return ctx.forward(tokens, all_logits=True)


def same_logits(a, b, family):
    """OPT: bit for bit. LLaMA: within 1e-5 of the scale, as the GGUF holds rms_norm_eps
    in float32 (llama.cpp's type for the key) where config.json has a double."""
    if family == "opt":
        return np.array_equal(a, b)
    return float(np.max(np.abs(a - b))) <= 1e-5 * max(1.0, float(np.max(np.abs(b))))


def reference_tokens(fixture):
    return json.loads((fixture / "reference.json").read_text())["tokens"]


# ---------------------------------------------------------------- the CLI


def test_help_explains_every_option():
    out = convert("--help")
    assert out.returncode == 0 and out.stderr == b""
    text = out.stdout.decode()
    body = text[text.index("positional arguments:"):]
    for option in ["--type", "--no-transpose-down", "--llama-cpp-layout", "--stock", "--magic",
                   "--no-tokenizer", "MODEL_DIR", "OUT.gguf"]:
        # argparse's entry: "  OPTION ... description", continued on deeper-indented lines
        entry = re.search(rf"\n  {re.escape(option)}\b(.*?)(?=\n  \S|\n\n|\Z)", body, re.S)
        assert entry and len(entry.group(1).split()) >= 5, f"{option} is not explained"
    for word in ["as_stored", "q8_0", "q4_0", "Exit status"]:
        assert word in text


@pytest.mark.parametrize("model", ["tiny-opt", "tiny-llama"])
def test_tiny_model_converts_runs_and_generates_the_folders_text(model, tmp_path):
    folder = REPO / "models" / model
    out = tmp_path / f"{model}-q8_0.gguf"
    done = convert(folder, out, "--type", "q8_0")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    steps = [line.split(": ", 2)[1].split(" ")[0] for line in lines]
    assert [s for s in steps if s != "predictor.safetensors"] == ["read", "tokenizer", "chat", "tensors", "wrote"]
    assert "byte-level" in lines[1] and "256 tokens" in lines[1]
    assert "Q8_0" in lines[-2] and "MB" in lines[-1] and lines[-1].endswith(" s")
    assert os.listdir(tmp_path) == [out.name]  # no temporary file left
    g = read_gguf(out)
    assert g.metadata["lazyneuron.tokenizer.type"] == "byte-level"
    assert len(g.metadata["tokenizer.ggml.tokens"]) == 256
    assert g.metadata["tokenizer.ggml.eos_token_id"] == 2
    # Greedy, same weights: the same text (ids = bytes) from the folder loaded as Q8_0.
    common = ["-p", "The meaning of life is", "-n", "64", "--temp", "0", "-t", "1",
              "--predictor", "off"]
    from_gguf = run("-m", out, *common)
    from_folder = run("-m", folder, "--type", "q8_0", *common)
    assert from_gguf.returncode == 0 and from_folder.returncode == 0
    assert from_gguf.stdout == from_folder.stdout
    assert len(from_gguf.stdout) > len("The meaning of life is")
    # -i on the GGUF: continues after a line.
    chat = run("-m", out, "-n", "16", "--temp", "0", "-t", "1", "-i", "-p", "Hello", input=b"world\n")
    assert chat.returncode == 0 and b"world\n" in chat.stdout
    assert len(chat.stdout) > len(b"Helloworld\n")
    # F32 as stored: the folder's logits exactly.
    f32 = tmp_path / "f32.gguf"
    assert convert(folder, f32).returncode == 0
    tokens = list(b"Once upon a time")
    assert same_logits(logits(f32, tokens), logits(folder, tokens), model.split("-")[1])


OPT_FIXTURES = ["opt-preln", "opt-postln", "opt-noprefix", "opt-proj", "opt-bf16", "opt-f16",
                "opt-sharded", "opt-sparse", "opt-untied", "opt-proj-preln", "opt-nobias"]
LLAMA_FIXTURES = ["llama-gqa", "llama-bias", "llama-bf16", "llama-f16", "llama-drelu", "llama-fatrelu",
                  "llama-headdim", "llama-mha", "llama-mistral", "llama-mqa", "llama-rope", "llama-silu"]


@pytest.mark.parametrize("fixture", OPT_FIXTURES + LLAMA_FIXTURES)
def test_every_fixture_converts_to_the_same_model(fixture, tmp_path):
    folder = DATA / fixture
    out = tmp_path / "m.gguf"
    done = convert(folder, out)
    assert done.returncode == 0, done.stderr
    tokens = reference_tokens(folder)
    assert same_logits(logits(out, tokens), logits(folder, tokens), fixture.split("-")[0]), fixture
    g = read_gguf(out)
    family = "opt" if fixture.startswith("opt") else None
    if family:
        assert g.metadata["general.architecture"] == "opt"
        assert "position_embd.weight" in g.tensors
    assert any(name.endswith("ffn_down_t.weight") for name in g.tensors)


@pytest.mark.parametrize("fixture,options", [
    ("opt-postln", ["--no-transpose-down", "--type", "f16"]),
    ("llama-gqa", ["--llama-cpp-layout", "--type", "bf16"]),
    ("llama-mqa", ["--stock", "--magic", "PWRI"]),
])
def test_layouts_load_as_the_folder_in_that_type(fixture, options, tmp_path):
    folder = DATA / fixture
    out = tmp_path / "m.gguf"
    assert convert(folder, out, *options).returncode == 0
    weight_type = options[options.index("--type") + 1] if "--type" in options else "as_stored"
    tokens = reference_tokens(folder)
    assert same_logits(logits(out, tokens), logits(folder, tokens, weight_type), fixture.split("-")[0])


def test_quantize_the_converted_file(tmp_path):
    """lzn-convert then lzn-quantize: the same as converting to that type directly."""
    f32, q4, direct = tmp_path / "f32.gguf", tmp_path / "q4.gguf", tmp_path / "direct.gguf"
    assert convert(REPO / "models" / "tiny-llama", f32).returncode == 0
    done = quantize(f32, q4, "Q4_0")
    assert done.returncode == 0, done.stderr
    assert b"wrote" in done.stdout and b"q4_0" in done.stdout
    assert convert(REPO / "models" / "tiny-llama", direct, "--type", "q4_0").returncode == 0
    a, b = read_gguf(q4), read_gguf(direct)
    blob_a, blob_b = q4.read_bytes(), direct.read_bytes()
    for name, (kind, shape, offset, nbytes) in b.tensors.items():
        k2, s2, o2, n2 = a.tensors[name]
        assert (kind, shape, nbytes) == (k2, s2, n2), name
        assert blob_b[offset:offset + nbytes] == blob_a[o2:o2 + n2], name
    for key in b.metadata:
        assert key in a.metadata or key == "general.alignment", key
    assert a.metadata["general.file_type"] == 2
    gen = run("-m", q4, "-p", "Once", "-n", "8", "--temp", "0", "-t", "1")
    assert gen.returncode == 0 and len(gen.stdout) > 4


# -------------------------------------------------------------- tokenizers


def lib_tokenizer():
    lib = lzn._lib.load()
    lib.lzn_tokenizer_load.restype = ctypes.c_int
    lib.lzn_tokenizer_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(lzn._lib.TOKENIZER_P)]
    lib.lzn_tokenizer_free.restype = None
    lib.lzn_tokenizer_free.argtypes = [lzn._lib.TOKENIZER_P]
    return lib


def tokenize(path, data, add_bos=0):
    """The library's ids of data with the tokenizer of a folder or GGUF file."""
    lib = lib_tokenizer()
    tok = lzn._lib.TOKENIZER_P()
    lzn._check(lib.lzn_tokenizer_load(os.fsencode(path), ctypes.byref(tok)))
    try:
        n = ctypes.c_int(0)
        lib.lzn_tokenize(tok, data, len(data), add_bos, None, 0, ctypes.byref(n))
        out = (ctypes.c_int32 * max(n.value, 1))()
        lzn._check(lib.lzn_tokenize(tok, data, len(data), add_bos, out, n.value, ctypes.byref(n)))
        return list(out[:n.value])
    finally:
        lib.lzn_tokenizer_free(tok)


def tokenizer_gguf(folder, config, family, n_vocab, out):
    meta, summary, _ = hf_tokenizer.tokenizer_metadata(str(folder), config, family, n_vocab)
    out.write_bytes(gguf_bytes({"general.architecture": "llama", **meta}, {}))
    return meta, summary


def reference_cases(path):
    return [(bytes.fromhex(c["hex"]), c["ids"]) for c in json.loads(Path(path).read_text())["cases"]]


@pytest.mark.parametrize("folder", ["gpt2", "gpt2-hf"])
def test_gpt2_tokenizers_tokenize_as_the_reference(folder, tmp_path):
    src = DATA / "tokenizer" / folder
    config = json.loads((DATA / "tokenizer" / "gpt2" / "config.json").read_text())
    out = tmp_path / "t.gguf"
    meta, summary = tokenizer_gguf(src, config, "opt", 3257, out)
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
    assert meta["tokenizer.ggml.token_type"][3256] == hf_tokenizer.CONTROL
    assert "gpt2" in summary and "3257 tokens" in summary
    for text, ids in reference_cases(DATA / "tokenizer" / "gpt2" / "reference.json"):
        assert tokenize(out, text) == ids, text[:40]


def spm_vocab():
    g = read_gguf(DATA / "tokenizer" / "spm.gguf")
    m = g.metadata
    return m["tokenizer.ggml.tokens"], m["tokenizer.ggml.scores"], m["tokenizer.ggml.token_type"]


def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 5:
        return key + payload
    return key + varint(len(payload)) + payload


def sentencepiece_model(tokens, scores, types, add_dummy_prefix=True, model_type=2):
    """A SentencePiece ModelProto (what tokenizer.model holds)."""
    pieces = b"".join(field(1, 2, field(1, 2, t.encode()) + field(2, 5, struct.pack("<f", s)) +
                                field(3, 0, k)) for t, s, k in zip(tokens, scores, types))
    trainer = field(3, 0, model_type) + field(40, 0, 0) + field(41, 0, 1) + field(42, 0, 2) + \
        field(43, 0, (1 << 64) - 1)  # pad_id -1, as int32 in a varint
    normalizer = field(1, 2, b"identity") + field(3, 0, 1 if add_dummy_prefix else 0)
    return pieces + field(2, 2, trainer) + field(3, 2, normalizer)


def test_sentencepiece_model_tokenizes_as_sentencepiece(tmp_path):
    tokens, scores, types = spm_vocab()
    folder = tmp_path / "spm"
    folder.mkdir()
    (folder / "tokenizer.model").write_bytes(sentencepiece_model(tokens, scores, types))
    (folder / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": True,
                                                               "bos_token": "<s>", "eos_token": "</s>"}))
    out = tmp_path / "t.gguf"
    meta, summary = tokenizer_gguf(folder, {}, "llama", len(tokens), out)
    assert meta["tokenizer.ggml.model"] == "llama"
    assert meta["tokenizer.ggml.tokens"].value == tokens
    assert np.allclose(meta["tokenizer.ggml.scores"], scores)
    assert list(meta["tokenizer.ggml.token_type"]) == types
    assert meta["tokenizer.ggml.bos_token_id"].value == 1 and meta["tokenizer.ggml.eos_token_id"].value == 2
    assert meta["tokenizer.ggml.add_space_prefix"] is True and meta["tokenizer.ggml.add_bos_token"] is True
    cases = reference_cases(DATA / "tokenizer" / "spm_reference.json")
    for text, ids in cases:
        assert tokenize(out, text) == ids, text[:40]
    assert tokenize(out, b"Hello", add_bos=1)[0] == 1
    # A unigram model is not what lazyneuron runs: one line, not a wrong tokenizer.
    (folder / "tokenizer.model").write_bytes(sentencepiece_model(tokens, scores, types, model_type=1))
    with pytest.raises(hf_tokenizer.TokenizerError, match="unigram"):
        hf_tokenizer.tokenizer_metadata(str(folder), {}, "llama", len(tokens))


def test_sentencepiece_style_tokenizer_json(tmp_path):
    """LLaMA's tokenizer.json (BPE with byte_fallback): merges made from the vocabulary as
    transformers' SpmConverter makes them; the GGUF tokenizes as SentencePiece."""
    tokens, scores, types = spm_vocab()
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = []
    for piece_id, piece in enumerate(tokens):
        if types[piece_id] != 1 or len(piece) < 2:
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                merges.append((piece_id, vocab[left], vocab[right], f"{left} {right}"))
    merges.sort()
    tj = {"version": "1.0",
          "added_tokens": [{"id": 0, "content": "<unk>", "special": True},
                           {"id": 1, "content": "<s>", "special": True},
                           {"id": 2, "content": "</s>", "special": True}],
          "normalizer": {"type": "Sequence", "normalizers": [
              {"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "},
                                                         "content": "\u2581"}]},
          "pre_tokenizer": None,
          "decoder": {"type": "Sequence", "decoders": []},
          "model": {"type": "BPE", "byte_fallback": True, "unk_token": "<unk>", "vocab": vocab,
                    "merges": [m for *_, m in merges]}}
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "tokenizer.json").write_text(json.dumps(tj))
    out = tmp_path / "t.gguf"
    meta, _ = tokenizer_gguf(folder, {"bos_token_id": 1, "eos_token_id": 2}, "llama", len(tokens), out)
    assert meta["tokenizer.ggml.model"] == "llama" and meta["tokenizer.ggml.add_space_prefix"] is True
    assert list(meta["tokenizer.ggml.token_type"]) == types
    for text, ids in reference_cases(DATA / "tokenizer" / "spm_reference.json"):
        assert tokenize(out, text) == ids, text[:40]


def test_opt_with_a_gpt2_tokenizer_tokenizes_as_its_folder(tmp_path):
    """tiny-opt (vocabulary 256) with vocab.json + merges.txt instead of its byte-level
    description (GPT-2's first 256 tokens: the bytes; merges beyond them are skipped),
    bos/eos/pad in config.json, add_bos in tokenizer_config.json: the GGUF's tokenizer is
    the folder's, BOS and specials included."""
    folder = tmp_path / "opt"
    shutil.copytree(REPO / "models" / "tiny-opt", folder,
                    ignore=shutil.ignore_patterns("*.png", "*.csv", "logits.f32", "*.md",
                                                  "lazyneuron_tokenizer.json"))
    full = json.loads((DATA / "tokenizer" / "gpt2" / "vocab.json").read_text())
    (folder / "vocab.json").write_text(json.dumps({t: i for t, i in full.items() if i < 256}))
    shutil.copy(DATA / "tokenizer" / "gpt2" / "merges.txt", folder / "merges.txt")
    (folder / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": True}))
    out = tmp_path / "opt.gguf"
    done = convert(folder, out)
    assert done.returncode == 0, done.stderr
    assert b"gpt2 from vocab.json + merges.txt, 256 tokens, bos 2, eos 2, add_bos true" in done.stdout
    with lzn.Model(folder) as a, lzn.Model(out) as b:
        assert b.tokenizer_info.kind == "gpt2" and b.tokenizer_info.add_bos == 1
        for text in [b"Hello world", b"a b  c\n\tdd", "Gr\u00fc\u00dfe".encode()]:
            assert a.tokenize(text) == b.tokenize(text) and b.tokenize(text)[0] == 2
            assert a.detokenize(a.tokenize(text)) == b.detokenize(b.tokenize(text))
            assert b.token_to_piece(1) == b""  # pad: a control token in both


@pytest.mark.parametrize("where,value,keys", [
    ("tokenizer_config.json", {"chat_template": "{{ messages }}"}, {"tokenizer.chat_template": "{{ messages }}"}),
    ("tokenizer_config.json", {"chat_template": [{"name": "default", "template": "A"},
                                                 {"name": "tool_use", "template": "B"}]},
     {"tokenizer.chat_template": "A", "tokenizer.chat_template.tool_use": "B"}),
    ("chat_template.jinja", "{% for m in messages %}{{ m.content }}{% endfor %}",
     {"tokenizer.chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}),
    ("chat_template.json", {"chat_template": "C"}, {"tokenizer.chat_template": "C"}),
])
def test_chat_template_is_carried(where, value, keys, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(REPO / "models" / "tiny-llama", folder,
                    ignore=shutil.ignore_patterns("*.png", "*.csv", "logits.f32"))
    (folder / where).write_text(value if isinstance(value, str) else json.dumps(value))
    out = tmp_path / "m.gguf"
    done = convert(folder, out, "--type", "q4_0")
    assert done.returncode == 0, done.stderr
    meta = read_gguf(out).metadata
    for key, template in keys.items():
        assert meta[key] == template
    assert b"chat template: tokenizer.chat_template" in done.stdout


def test_small_tokenizer_is_padded_large_one_refused(tmp_path):
    tokens, scores, types = spm_vocab()
    folder = tmp_path / "spm"
    folder.mkdir()
    (folder / "tokenizer.model").write_bytes(sentencepiece_model(tokens, scores, types))
    meta, summary, _ = hf_tokenizer.tokenizer_metadata(str(folder), {}, "llama", len(tokens) + 3)
    assert meta["tokenizer.ggml.tokens"].value[-3:] == [f"[PAD{len(tokens) + i}]" for i in range(3)]
    assert list(meta["tokenizer.ggml.token_type"][-3:]) == [hf_tokenizer.UNUSED] * 3
    assert "(+3 padding)" in summary
    with pytest.raises(hf_tokenizer.TokenizerError, match="800 tokens, the model's vocabulary 700"):
        hf_tokenizer.tokenizer_metadata(str(folder), {}, "llama", 700)


# --------------------------------------------------------------- bad input


def tiny_llama_copy(tmp_path, name="m"):
    folder = tmp_path / name
    shutil.copytree(REPO / "models" / "tiny-llama", folder,
                    ignore=shutil.ignore_patterns("*.png", "*.csv", "logits.f32", "*.md"))
    return folder


def edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    for k, v in changes.items():
        if v is None:
            config.pop(k, None)
        else:
            config[k] = v
    (folder / "config.json").write_text(json.dumps(config))


def safetensors_bytes(tensors):
    header, blobs, offset = {}, [], 0
    for name, dtype, arr in tensors:
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def bad_inputs(tmp_path):
    """(name, folder or path, extra args, words stderr must hold)."""
    rows = []
    rows.append(("missing folder", tmp_path / "nope", [], ["nope", "no such folder"]))
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    rows.append(("a file", a_file, [], ["a-file", "not a folder"]))
    empty = tmp_path / "empty"
    empty.mkdir()
    rows.append(("no config.json", empty, [], ["config.json", "missing"]))
    f = tiny_llama_copy(tmp_path, "badjson")
    (f / "config.json").write_text("{\"hidden_size\": 128,")
    rows.append(("config not JSON", f, [], ["config.json", "invalid JSON"]))
    f = tiny_llama_copy(tmp_path, "gpt2arch")
    edit_config(f, model_type="gpt2", architectures=["GPT2LMHeadModel"])
    rows.append(("unsupported architecture", f, [], ["config.json", "GPT2LMHeadModel", "not supported"]))
    f = tiny_llama_copy(tmp_path, "nokey")
    edit_config(f, intermediate_size=None)
    rows.append(("missing key", f, [], ["config.json", "intermediate_size", "missing"]))
    f = tiny_llama_copy(tmp_path, "badkey")
    edit_config(f, num_hidden_layers="four")
    rows.append(("ill-typed key", f, [], ["config.json", "num_hidden_layers"]))
    f = tiny_llama_copy(tmp_path, "gelu")
    edit_config(f, hidden_act="gelu")
    rows.append(("activation", f, [], ["config.json", "gelu"]))
    f = tiny_llama_copy(tmp_path, "noweights")
    (f / "model.safetensors").unlink()
    rows.append(("no safetensors", f, [], ["noweights", "model.safetensors"]))
    f = tiny_llama_copy(tmp_path, "truncated")
    data = (f / "model.safetensors").read_bytes()
    (f / "model.safetensors").write_bytes(data[:len(data) // 2])
    rows.append(("truncated safetensors", f, [], ["model.safetensors", "truncated"]))
    f = tiny_llama_copy(tmp_path, "garbage")
    (f / "model.safetensors").write_bytes(struct.pack("<Q", 12) + b"{not json!!}")
    rows.append(("malformed header", f, [], ["model.safetensors", "not JSON"]))
    f = tiny_llama_copy(tmp_path, "tiny-header")
    (f / "model.safetensors").write_bytes(b"\x01\x02")
    rows.append(("7-byte safetensors", f, [], ["model.safetensors", "truncated"]))
    f = tiny_llama_copy(tmp_path, "int8")
    (f / "model.safetensors").write_bytes(safetensors_bytes([("model.norm.weight", "I8", np.zeros(4, np.int8))]))
    rows.append(("dtype", f, [], ["model.safetensors", "I8"]))
    f = tiny_llama_copy(tmp_path, "shape")
    edit_config(f, hidden_size=96)
    rows.append(("shape", f, [], ["model.safetensors", "model.embed_tokens.weight", "[256, 96]"]))
    f = tiny_llama_copy(tmp_path, "missing-tensor")
    edit_config(f, num_hidden_layers=5)
    rows.append(("missing tensor", f, [], ["model.layers.4", "missing"]))
    f = tiny_llama_copy(tmp_path, "badtok")
    (f / "lazyneuron_tokenizer.json").write_text("{\"type\": ")
    rows.append(("tokenizer not JSON", f, [], ["lazyneuron_tokenizer.json", "invalid JSON"]))
    rows.append(("rows of 40 for q8_0", DATA / "llama-gqa", ["--type", "q8_0"],
                 ["model.safetensors", "rows of 40", "multiple of 32"]))
    big = tmp_path / "big"
    shutil.copytree(DATA / "opt-preln", big)
    st = (big / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", st[:8])[0]
    header = json.loads(st[8:8 + n])
    name = "model.decoder.layers.0.fc1.weight"
    begin = 8 + n + header[name]["data_offsets"][0]
    (big / "model.safetensors").write_bytes(st[:begin] + struct.pack("<f", 1e6) + st[begin + 4:])
    rows.append(("beyond F16", big, ["--type", "f16"], ["model.decoder.layers.0.fc1.weight", "f16 cannot hold"]))
    rows.append(("--stock on OPT", DATA / "opt-preln", ["--stock"], ["config.json", "LLaMA family"]))
    return rows


def test_bad_inputs_are_one_line_exit_1_and_leave_nothing(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "o.gguf"
    for name, src, extra, words in bad_inputs(tmp_path):
        done = convert(src, out, *extra)
        err = done.stderr.decode()
        assert done.returncode == 1, (name, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (name, err)
        assert err.startswith("lzn-convert: "), (name, err)
        for w in words:
            assert w in err, (name, w, err)
        assert os.listdir(out_dir) == [], (name, os.listdir(out_dir))


def test_unwritable_output_leaves_nothing_and_keeps_an_old_file(tmp_path):
    for target, words in [(tmp_path / "no-dir" / "o.gguf", ["no-dir", "No such file"]),
                          (tmp_path, ["is a folder"])]:
        done = convert(REPO / "models" / "tiny-opt", target)
        err = done.stderr.decode()
        assert done.returncode == 1 and len(err.strip().splitlines()) == 1, err
        assert all(w in err for w in words), err
    old = tmp_path / "old.gguf"
    old.write_bytes(b"the old file")
    bad = tiny_llama_copy(tmp_path, "bad")
    edit_config(bad, num_hidden_layers=5)  # fails only when writing layer 4
    done = convert(bad, old, "--type", "q8_0")
    assert done.returncode == 1
    assert old.read_bytes() == b"the old file"
    assert sorted(os.listdir(tmp_path)) == ["bad", "old.gguf"]


def test_usage_errors_exit_2():
    for args in [[], ["only-one"], ["a", "b", "--type", "q2_k"], ["a", "b", "--bogus"]]:
        done = convert(*args)
        assert done.returncode == 2 and b"usage:" in done.stderr and b"Traceback" not in done.stderr


QUANTIZE_BAD = [  # args after the binary, exit status, words
    ([], 2, ["give IN.gguf OUT.gguf TYPE"]),
    (["a", "b"], 2, ["give IN.gguf OUT.gguf TYPE"]),
    (["a", "b", "q2_k"], 2, ["TYPE q2_k"]),
    (["a", "b", "q8_0", "extra"], 2, ["too many: extra"]),
    (["--bogus", "a", "b", "q8_0"], 2, ["unknown option --bogus"]),
    (["IN_MISSING", "OUT", "q8_0"], 1, ["no-such.gguf"]),
    (["/etc/passwd", "OUT", "q8_0"], 1, ["/etc/passwd", "GGUF"]),
    (["TRUNCATED", "OUT", "q8_0"], 1, ["truncated.gguf"]),
    (["GQA", "OUT", "q4_0"], 1, ["llama-gqa.gguf", "rows of 40", "Q4_0"]),
    (["GQA", "NO_DIR", "f16"], 1, ["no-dir/o.gguf"]),
]


def test_lzn_quantize_help_version_and_bad_input(tmp_path):
    help_ = quantize("--help")
    assert help_.returncode == 0 and b"usage: lzn-quantize" in help_.stdout and b"--keep-layout" in help_.stdout
    version = quantize("--version")
    assert version.returncode == 0 and version.stdout.startswith(b"lzn-quantize ")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    gqa = DATA / "gguf" / "llama-gqa.gguf"
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(gqa.read_bytes()[:5000])
    subst = {"IN_MISSING": tmp_path / "no-such.gguf", "OUT": out_dir / "o.gguf", "TRUNCATED": truncated,
             "GQA": gqa, "NO_DIR": tmp_path / "no-dir" / "o.gguf"}
    for args, status, words in QUANTIZE_BAD:
        done = quantize(*[subst.get(a, a) for a in args])
        err = done.stderr.decode()
        assert done.returncode == status, (args, err)
        assert len(err.strip().splitlines()) == 1, (args, err)
        for w in words:
            assert w in err, (args, w, err)
        assert os.listdir(out_dir) == [], args
