#!/usr/bin/python3
"""Writes tests/data/gguf/*.gguf: GGUF copies of the LLaMA-family fixtures made with
tools/lzn_convert.py (each checked against its Hugging Face folder by tests/test_llama.c and,
for OPT, tests/test_quantize.c),
and broken ones, each a specific status when loaded as a model.

    /usr/bin/python3 tools/make_gguf_fixtures.py [--out tests/data/gguf]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_write  # noqa: E402
import lzn_convert  # noqa: E402

GOOD = [  # file, fixture, convert() keyword arguments
    ("llama-gqa.gguf", "llama-gqa", {}),
    ("llama-gqa-cpp-f16.gguf", "llama-gqa", {"out_type": "f16", "llama_cpp_layout": True,
                                             "transpose_down": False}),
    ("llama-mqa-pwri.gguf", "llama-mqa", {"stock": True, "magic": b"PWRI"}),
    ("llama-fatrelu-bf16.gguf", "llama-fatrelu", {"out_type": "bf16"}),
    ("llama-drelu.gguf", "llama-drelu", {"stock": True}),
    # The trained model quantized in Python: byte for byte what the library's own quantizer
    # makes of the same folder (tests/test_llama.c loads both and compares).
    ("tiny-llama-q8_0.gguf", "../../models/tiny-llama", {"out_type": "q8_0"}),
    ("tiny-llama-q4_0.gguf", "../../models/tiny-llama", {"out_type": "q4_0"}),
    # OPT in GGUF (opt_gguf.c): the loader's variants (pre/post-LN, projections, no bias or
    # affine, untied), checked against their folders by tests/test_quantize.c; W_down
    # transposed or as stored, in each float type. (tools/tests/test_lzn_convert.py converts
    # every OPT fixture at test time.)
    ("opt-preln.gguf", "opt-preln", {}),
    ("opt-postln-f16.gguf", "opt-postln", {"out_type": "f16", "transpose_down": False}),
    ("opt-proj-preln.gguf", "opt-proj-preln", {}),
    ("opt-nobias.gguf", "opt-nobias", {}),
    ("opt-untied-bf16.gguf", "opt-untied", {"out_type": "bf16"}),
]

# Broken model files: (file, what to change in the metadata or tensors).
BAD = [
    ("bad-arch.gguf", {"general.architecture": "gpt2"}, None),
    ("bad-missing-key.gguf", {"llama.block_count": None}, None),
    ("bad-activation.gguf", {"lazyneuron.activation": "gelu"}, None),
    ("bad-shape.gguf", {"llama.embedding_length": gguf_write.typed("u32", 48)}, None),
    ("bad-key-type.gguf", {"llama.attention.head_count": "four"}, None),
    ("bad-missing-tensor.gguf", {}, "blk.1.ffn_up.weight"),
]


def write_bad(folder, out, changes, drop_tensor):
    meta, tensors = lzn_convert.build(folder)
    meta, tensors = dict(meta), dict(tensors)
    for key, value in changes.items():
        if value is None:
            meta.pop(key)
        else:
            meta[key] = value
    if drop_tensor:
        tensors.pop(drop_tensor)
    gguf_write.write_gguf(out, meta, tensors, alignment=64)


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/gguf")
    a = ap.parse_args(argv)
    data = os.path.dirname(os.path.abspath(a.out)) if a.out.endswith("gguf") else a.out
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
    for name, fixture, kw in GOOD:
        lzn_convert.convert(os.path.join(src, fixture), os.path.join(a.out, name), **kw)
    for name, changes, drop in BAD:
        write_bad(os.path.join(src, "llama-gqa"), os.path.join(a.out, name), changes, drop)
    del data


if __name__ == "__main__":
    main(sys.argv[1:])
