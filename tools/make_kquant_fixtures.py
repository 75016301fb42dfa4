#!/usr/bin/python3
"""Writes tests/data/kquants/: K-quant super-blocks (Q4_K, Q5_K, Q6_K) and the values llama.cpp's
own Python package, gguf-py, dequantizes them to: an independent implementation of the byte
layouts that tests/test_kquants.c holds the library's to_f32 (and so every K-quant kernel) to.

    /usr/bin/python3 tools/make_kquant_fixtures.py LLAMA_CPP_SRC [--out tests/data/kquants]

LLAMA_CPP_SRC is a llama.cpp source tree (its gguf-py/ is imported from there, run once: the
library, its tests and CI never need it; the output is committed). Deterministic (fixed seed).

Per type T: T.bin, N super-blocks of random bytes whose fp16 scales are replaced by finite values
of many magnitudes and both signs (zero, subnormal and the largest finite value among them), and
T.f32, gguf-py's dequantize of those bytes: N * 256 little-endian float32.
"""
import argparse
import os
import sys
import types

import numpy as np

N_BLOCKS = 64
SEED = 23

# The byte offsets of each type's fp16 scales in its super-block (llama.cpp's ggml-common.h).
LAYOUTS = {  # name: (block bytes, fp16 offsets)
    "Q4_K": (144, (0, 2)),
    "Q5_K": (176, (0, 2)),
    "Q6_K": (210, (208,)),
}


def scales(rng, n):
    """fp16 scales: mostly normal values of many magnitudes, and the edge cases."""
    mag = np.float32(2.0) ** rng.integers(-16, 4, size=n).astype(np.float32)
    vals = (mag * rng.uniform(1.0, 2.0, size=n).astype(np.float32)).astype(np.float16)
    vals = np.where(rng.integers(0, 2, size=n) == 1, -vals, vals)
    edge = np.array([0.0, -0.0, 6e-8, 65504.0, -1.0, 1.0], dtype=np.float16)
    vals[: len(edge)] = edge
    return vals


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("llama_cpp_src")
    ap.add_argument("--out", default="tests/data/kquants")
    a = ap.parse_args(argv)
    # The package's __init__ imports its tokenizer tools (sentencepiece, ...); only quants.py
    # and what it imports are needed, so the package is made without running __init__.
    package = types.ModuleType("gguf")
    package.__path__ = [os.path.join(a.llama_cpp_src, "gguf-py", "gguf")]
    sys.modules["gguf"] = package
    from gguf.constants import GGMLQuantizationType  # noqa: E402
    from gguf.quants import dequantize  # noqa: E402

    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    for name, (block_bytes, offsets) in LAYOUTS.items():
        blocks = rng.integers(0, 256, size=(N_BLOCKS, block_bytes), dtype=np.uint8)
        for off in offsets:
            blocks[:, off:off + 2] = scales(rng, N_BLOCKS).view(np.uint8).reshape(N_BLOCKS, 2)
        values = dequantize(blocks, getattr(GGMLQuantizationType, name)).astype("<f4").reshape(-1)
        assert values.size == N_BLOCKS * 256 and np.all(np.isfinite(values)), name
        blocks.tofile(os.path.join(a.out, name + ".bin"))
        values.tofile(os.path.join(a.out, name + ".f32"))
        print(f"{name}: {N_BLOCKS} super-blocks, {blocks.nbytes} bytes -> {values.size} values")


if __name__ == "__main__":
    main(sys.argv[1:])
