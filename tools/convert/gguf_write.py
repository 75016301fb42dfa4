#!/usr/bin/python3
"""A tiny GGUF v3 writer for test fixtures (plain Python + numpy).

Written from the GGUF spec (ggml docs/gguf.md), not from gguf-py, which is
not available offline. Little-endian throughout:

    magic "GGUF" (or PowerInfer's "PWRI"), u32 version 3, u64 tensor_count,
    u64 metadata_kv_count, the metadata (key string, u32 value type, value),
    the tensor infos (name string, u32 n_dims, u64 ne[n_dims] innermost first,
    u32 ggml type, u64 offset into the data section), zero padding to the
    alignment, then the data section, each tensor at a multiple of the
    alignment. A string is a u64 byte length and the bytes.

As a library:

    from gguf_write import write_gguf, typed, q8_0, q4_0, raw
    write_gguf("m.gguf",
               {"general.architecture": "llama",
                "llama.block_count": typed("u32", 2),      # or np.uint32(2)
                "tokenizer.ggml.tokens": ["<s>", "a"]},
               {"tok_embd.weight": np.zeros((8, 32), np.float32),   # F32
                "blk.0.ffn_up.weight": q8_0(w),                     # quantized here
                "x": raw("BF16", (4,), bf16_bytes)},                # bytes as given
               alignment=64)

Metadata values: str -> string, bool -> bool, int -> int32 (int64 if it does
not fit), float -> float32, numpy scalars keep their type, typed(name, v)
forces one ("u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str",
"u64", "i64", "f64"), a list or 1-D numpy array is an array (a list's
element type is its first element's; a list of str is an array of strings).
Tensors: numpy float32 -> F32, float16 -> F16, or a Tensor from q8_0, q4_0
(llama.cpp's reference quantizers, rows of whole 32-weight blocks) or raw, or
lazy(type, shape, make): made only when written, so write_gguf holds one
tensor at a time.
Shapes are given outermost first, as numpy has them; the file stores ne
innermost first.

As a script, writes the committed test fixture:

    /usr/bin/python3 tools/convert/gguf_write.py --example tests/data/gguf/tiny.gguf
"""
import argparse
import struct
import sys
from collections import namedtuple

import numpy as np

# metadata value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
           BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}
_NAMES = {"u8": U8, "i8": I8, "u16": U16, "i16": I16, "u32": U32, "i32": I32, "f32": F32,
          "bool": BOOL, "str": STRING, "u64": U64, "i64": I64, "f64": F64}
_NUMPY = {np.dtype(np.uint8): U8, np.dtype(np.int8): I8, np.dtype(np.uint16): U16,
          np.dtype(np.int16): I16, np.dtype(np.uint32): U32, np.dtype(np.int32): I32,
          np.dtype(np.float32): F32, np.dtype(np.bool_): BOOL, np.dtype(np.uint64): U64,
          np.dtype(np.int64): I64, np.dtype(np.float64): F64}

# ggml tensor types: id, weights per block, bytes per block
GGML_TYPES = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q8_0": (8, 32, 34),
              "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210),
              "BF16": (30, 1, 2)}

Typed = namedtuple("Typed", "type value")
Tensor = namedtuple("Tensor", "ggml_type shape data")  # shape outermost first; data: bytes
Lazy = namedtuple("Lazy", "ggml_type shape make")  # a Tensor made when written: see lazy()


def typed(type_name, value):
    """A metadata value of an explicit type: typed("u32", 5), typed("f64", [1.0, 2.0])."""
    return Typed(_NAMES[type_name], value)


def raw(ggml_type, shape, data):
    """A tensor given as its bytes (e.g. BF16, or blocks quantized elsewhere)."""
    tensor = Tensor(ggml_type, tuple(int(d) for d in shape), bytes(data))
    expected = tensor_nbytes(tensor.ggml_type, tensor.shape)
    if len(tensor.data) != expected:
        raise ValueError(f"{ggml_type} {shape}: {len(tensor.data)} bytes, expected {expected}")
    return tensor


def tensor_nbytes(ggml_type, shape):
    _, block, block_bytes = GGML_TYPES[ggml_type]
    cols = shape[-1]
    if cols % block:
        raise ValueError(f"{ggml_type}: the last dimension {cols} is not a multiple of {block}")
    return int(np.prod(shape[:-1], dtype=np.int64)) * (cols // block) * block_bytes


def _blocks(x):
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 0 or x.shape[-1] % 32:
        raise ValueError(f"shape {x.shape}: the last dimension must be a multiple of 32")
    return x.shape, x.reshape(-1, 32)


def q8_0(x):
    """llama.cpp's quantize_row_q8_0_ref: d = max|x| / 127, q = round(x / d)."""
    shape, b = _blocks(x)
    amax = np.abs(b).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    v = b * inv[:, None]
    q = (np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))).astype(np.int8)  # roundf: half away
    out = np.zeros(len(b), dtype=[("d", "<f2"), ("qs", "i1", 32)])
    out["d"], out["qs"] = d.astype(np.float16), q
    return Tensor("Q8_0", shape, out.tobytes())


def q4_0(x):
    """llama.cpp's quantize_row_q4_0_ref: m = the value of largest |x|, d = m / -8,
    q = min(15, trunc(x / d + 8.5)); byte j holds q[j] | q[j + 16] << 4."""
    shape, b = _blocks(x)
    m = b[np.arange(len(b)), np.abs(b).argmax(axis=1)]
    d = (m / np.float32(-8)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = np.minimum(15, np.trunc(b * inv[:, None] + np.float32(8.5))).astype(np.uint8)
    out = np.zeros(len(b), dtype=[("d", "<f2"), ("qs", "u1", 16)])
    out["d"], out["qs"] = d.astype(np.float16), q[:, :16] | (q[:, 16:] << 4)
    return Tensor("Q4_0", shape, out.tobytes())


def _string(s):
    data = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(data)) + data


def _type_of(value):
    if isinstance(value, Typed):
        return value.type
    if isinstance(value, (str, bytes)):
        return STRING
    if isinstance(value, (bool, np.bool_)):
        return BOOL
    if isinstance(value, np.generic):
        return _NUMPY[value.dtype]
    if isinstance(value, int):
        return I32 if -2**31 <= value < 2**31 else I64
    if isinstance(value, float):
        return F32
    if isinstance(value, (list, tuple, np.ndarray)):
        return ARRAY
    raise TypeError(f"no GGUF type for {value!r}")


def _value(vtype, value):
    if vtype == STRING:
        return _string(value)
    if vtype == ARRAY:
        raise TypeError("arrays of arrays are not written (lazyneuron does not read them)")
    return struct.pack(_SCALAR[vtype], value)


def _metadata_entry(key, value):
    """key string, u32 value type, value; an array: u32 element type, u64 count, elements."""
    forced = value.type if isinstance(value, Typed) else None
    if forced is not None:
        value = value.value
    is_array = isinstance(value, (list, tuple, np.ndarray)) and not isinstance(value, str)
    if not is_array:
        vtype = forced if forced is not None else _type_of(value)
        return _string(key) + struct.pack("<I", vtype) + _value(vtype, value)
    if forced is not None:
        elem = forced
    elif isinstance(value, np.ndarray):
        elem = _NUMPY[value.dtype]
    else:
        elem = _type_of(value[0]) if len(value) else U8
    items = value.tolist() if isinstance(value, np.ndarray) else list(value)
    return (_string(key) + struct.pack("<IIQ", ARRAY, elem, len(items)) +
            b"".join(_value(elem, v) for v in items))


def _as_tensor(array):
    if isinstance(array, Tensor):
        return array
    a = np.asarray(array)
    if a.dtype == np.float32:
        return Tensor("F32", a.shape, a.astype("<f4").tobytes())
    if a.dtype == np.float16:
        return Tensor("F16", a.shape, a.astype("<f2").tobytes())
    raise TypeError(f"dtype {a.dtype}: pass float32, float16, or a Tensor (q8_0, q4_0, raw)")


def lazy(ggml_type, shape, make):
    """A tensor made only when written (write_gguf holds one at a time): make() returns
    what a tensor value may be (numpy float32/float16 or a Tensor) of this type and shape."""
    return Lazy(ggml_type, tuple(int(d) for d in shape), make)


def _described(name, t):
    """(ggml type, shape, bytes) of a tensor value, without making a Lazy one."""
    if isinstance(t, Lazy):
        return t.ggml_type, t.shape, tensor_nbytes(t.ggml_type, t.shape)
    t = _as_tensor(t)
    if len(t.shape) >= 1 and len(t.data) != tensor_nbytes(t.ggml_type, t.shape):
        raise ValueError(f"{name}: {len(t.data)} bytes do not match {t.ggml_type} {t.shape}")
    return t.ggml_type, t.shape, len(t.data)


def _layout(metadata, tensors, alignment, magic):
    """The header (up to the data section) and each tensor's (name, value, offset, bytes)."""
    metadata = dict(metadata)
    if alignment != 32 and "general.alignment" not in metadata:
        metadata["general.alignment"] = typed("u32", alignment)
    out = bytearray(magic + struct.pack("<IQQ", 3, len(tensors), len(metadata)))
    for key, value in metadata.items():
        out += _metadata_entry(key, value)
    offset, placed = 0, []
    for name, value in tensors.items():
        ggml_type, shape, nbytes = _described(name, value)
        if len(shape) < 1 or len(shape) > 4:
            raise ValueError(f"{name}: {len(shape)} dimensions; GGUF has 1 to 4")
        ne = list(reversed(shape))
        out += _string(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
        out += struct.pack("<IQ", GGML_TYPES[ggml_type][0], offset)
        placed.append((name, value, offset, nbytes))
        offset += -(-nbytes // alignment) * alignment
    out += bytes(-len(out) % alignment)
    return bytes(out), placed


def _data_of(name, value, nbytes):
    t = _as_tensor(value.make() if isinstance(value, Lazy) else value)
    if len(t.data) != nbytes:
        raise ValueError(f"{name}: made {len(t.data)} bytes, declared {nbytes}")
    return t.data


def gguf_bytes(metadata, tensors, alignment=32, magic=b"GGUF"):
    """The file as bytes. metadata: {key: value}; tensors: {name: array, Tensor or lazy}."""
    header, placed = _layout(metadata, tensors, alignment, magic)
    out = bytearray(header)
    for name, value, off, nbytes in placed:
        out += bytes(len(header) + off - len(out)) + _data_of(name, value, nbytes)
    return bytes(out)


def write_gguf(path, metadata, tensors, alignment=32, magic=b"GGUF"):
    """Writes the file, one tensor in memory at a time (lazy ones are made as they are
    written). Not atomic: lzn_convert.py writes to a temporary name and renames."""
    header, placed = _layout(metadata, tensors, alignment, magic)
    with open(path, "wb") as f:
        f.write(header)
        pos = len(header)
        for name, value, off, nbytes in placed:
            f.write(bytes(len(header) + off - pos))
            f.write(_data_of(name, value, nbytes))
            pos = len(header) + off + nbytes


def example():
    """tests/data/gguf/tiny.gguf: what tests/test_gguf.c (python_writer_file) checks."""
    ramp = (np.arange(128, dtype=np.float32) / 16 - 4).reshape(2, 64)
    metadata = {
        "general.architecture": "llama",
        "general.name": "lazyneuron gguf_write.py example",
        "llama.block_count": typed("u32", 2),
        "llama.attention.layer_norm_rms_epsilon": 1e-5,
        "test.int": -42,
        "test.flag": True,
        "test.u64": np.uint64(1 << 40),
        "test.f64": typed("f64", 0.25),
        "tokenizer.ggml.tokens": ["<s>", "\u2581the", "abc"],
        "tokenizer.ggml.scores": np.array([0.0, -1.5, -2.0], dtype=np.float32),
        "tokenizer.ggml.token_type": typed("i32", [3, 1, 1]),
    }
    tensors = {
        "f32.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
        "f16.weight": np.array([0.5, 1, 1.5, 0, -2], dtype=np.float16),
        "q8_0.weight": q8_0(ramp),
        "q4_0.weight": q4_0(ramp),
        # BF16 is the top half of an fp32: 1.0 and -3.0 are exact
        "bf16.weight": raw("BF16", (2,), (np.array([1.0, -3.0], "<f4").view("<u4") >> 16).astype("<u2").tobytes()),
    }
    return gguf_bytes(metadata, tensors, alignment=64)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--example", metavar="OUT", required=True,
                        help="write the example file (the committed test fixture) to OUT")
    args = parser.parse_args(argv)
    with open(args.example, "wb") as f:
        f.write(example())


if __name__ == "__main__":
    main(sys.argv[1:])
