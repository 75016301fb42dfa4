#!/usr/bin/python3
"""Writes the GGUF files of the W_down^T quality study (issue 23, README "Quality of the
transposed W_down"): a model folder as llama.cpp stores it (W_down as [d_model][d_ff], blocks
along d_ff: not transposed), every matrix in one type and W_down in another, as llama-quantize's
mixes do. lzn-bench quality --reference then loads it with each --down-t.

    /usr/bin/python3 tools/convert/down_study.py MODEL_DIR OUT.gguf [--type q4_0] [--down q4_k]

--type: the matrices' type (f32, f16, q8_0, q4_0: tools/convert/lzn_convert.py's quantizers, llama.cpp's
reference ones); --down: W_down's (also q4_k, q5_k, q6_k, quantized by the library itself through
lzn_weights_convert, so LAZYNEURON_LIB or the build tree's liblazyneuron must be there). The tiny
models' rows of d_model = 128 weights cannot be K-quants; their W_down rows (d_ff = 512) can.
"""
import argparse
import ctypes
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import gguf_write  # noqa: E402
import lzn_convert  # noqa: E402

K_TYPES = {"q4_k": (6, "Q4_K"), "q5_k": (7, "Q5_K"), "q6_k": (8, "Q6_K")}  # lzn_weight_type, GGUF name


def library_quantize(x, type_name):
    """x (rows x cols float32) in a K-quant, by the library's own quantizer."""
    from lazyneuron import _lib  # noqa: E402  (finds LAZYNEURON_LIB or the build tree's copy)
    lib = _lib.load()
    fn = lib.lzn_weights_convert
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    wtype, ggml_name = K_TYPES[type_name]
    x = np.ascontiguousarray(x, dtype=np.float32)
    rows, cols = x.shape
    _, block, block_bytes = gguf_write.GGML_TYPES[ggml_name]
    if cols % block:
        raise SystemExit(f"rows of {cols} weights cannot be {ggml_name} (whole {block}-weight super-blocks)")
    out = np.zeros(rows * (cols // block) * block_bytes, dtype=np.uint8)
    status = fn(wtype, x.ctypes.data, rows, cols, out.ctypes.data)
    if status != 0:
        raise SystemExit(f"lzn_weights_convert: {lib.lzn_last_error().decode()}")
    return gguf_write.raw(ggml_name, x.shape, out.tobytes())


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--type", default="q4_0", choices=("f32", "f16", "q8_0", "q4_0"))
    ap.add_argument("--down", default=None, help="W_down's type (default: --type)")
    a = ap.parse_args(argv)
    down = a.down or a.type
    meta, tensors = lzn_convert.build(a.model_dir, a.type, transpose_down=False, log=lambda *_: None)
    meta, tensors = dict(meta), dict(tensors)
    if down != a.type:
        _, exact = lzn_convert.build(a.model_dir, "f32", transpose_down=False, log=lambda *_: None)
        for name in [n for n in tensors if n.endswith(".ffn_down.weight")]:
            x = exact[name].make() if isinstance(exact[name], gguf_write.Lazy) else exact[name]
            if isinstance(x, gguf_write.Tensor):  # F32 as stored: its bytes
                x = np.frombuffer(x.data, dtype="<f4").reshape(x.shape)
            if down in K_TYPES:
                tensors[name] = library_quantize(x, down)
            else:
                tensors[name] = {"f32": x, "f16": x.astype(np.float16), "q8_0": gguf_write.q8_0(x),
                                 "q4_0": gguf_write.q4_0(x)}[down]
    gguf_write.write_gguf(a.out, meta, tensors, alignment=32)
    print(f"{a.out}: matrices {a.type}, W_down {down} as llama.cpp stores it ({os.path.getsize(a.out)} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
