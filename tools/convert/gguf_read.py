#!/usr/bin/python3
"""A small GGUF v3 reader for tests and tools (plain Python + numpy): the metadata and
the tensor descriptions (and, on request, a tensor's bytes), as gguf_write.py writes them.

    from gguf_read import read_gguf
    g = read_gguf("m.gguf")
    g.magic, g.metadata["general.architecture"], g.tensors["token_embd.weight"]
    # metadata: {key: value}; value: int, float, bool, str, or a list (arrays)
    # tensors: {name: (ggml type name, shape outermost first, offset in the file, bytes)}

As a script, prints a file's metadata (arrays abridged) and tensors:

    /usr/bin/python3 tools/convert/gguf_read.py FILE.gguf
"""
import struct
import sys
from collections import namedtuple

GGML_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 8: "Q8_0", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 30: "BF16"}
GGML_BLOCK = {"F32": (1, 4), "F16": (1, 2), "Q4_0": (32, 18), "Q8_0": (32, 34), "Q4_K": (256, 144),
              "Q5_K": (256, 176), "Q6_K": (256, 210), "BF16": (1, 2)}
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
           11: "<q", 12: "<d"}

Gguf = namedtuple("Gguf", "magic version metadata tensors alignment data_start")


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        (v,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.data[self.pos:self.pos + n]
        if len(s) != n:
            raise ValueError("a string runs past the end of the file")
        self.pos += n
        return s.decode("utf-8", "surrogateescape")

    def value(self, vtype):
        if vtype == 8:
            return self.string()
        if vtype == 9:
            elem, n = self.take("<I"), self.take("<Q")
            return [self.value(elem) for _ in range(n)]
        return self.take(_SCALAR[vtype])


def read_gguf(path):
    with open(path, "rb") as f:
        data = f.read()
    r = _Reader(data)
    magic = data[:4].decode("latin-1")
    r.pos = 4
    version, n_tensors, n_kv = r.take("<I"), r.take("<Q"), r.take("<Q")
    metadata = {}
    for _ in range(n_kv):
        key = r.string()
        metadata[key] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.take("<I")
        ne = [r.take("<Q") for _ in range(n_dims)]
        ggml, offset = r.take("<I"), r.take("<Q")
        infos.append((name, GGML_NAMES.get(ggml, str(ggml)), tuple(reversed(ne)), offset))
    alignment = metadata.get("general.alignment", 32)
    data_start = -(-r.pos // alignment) * alignment
    tensors = {}
    for name, kind, shape, offset in infos:
        block, block_bytes = GGML_BLOCK.get(kind, (1, 0))
        rows = 1
        for d in shape[:-1]:
            rows *= d
        tensors[name] = (kind, shape, data_start + offset, rows * (shape[-1] // block) * block_bytes)
    return Gguf(magic, version, metadata, tensors, alignment, data_start)


def main(argv):
    g = read_gguf(argv[0])
    print(f"{g.magic} v{g.version}, alignment {g.alignment}")
    for k, v in g.metadata.items():
        if isinstance(v, list) and len(v) > 8:
            v = f"[{', '.join(repr(x) for x in v[:8])}, ...] ({len(v)})"
        elif isinstance(v, str) and len(v) > 80:
            v = repr(v[:80]) + f"... ({len(v)} characters)"
        print(f"{k} = {v}")
    for name, (kind, shape, _, nbytes) in g.tensors.items():
        print(f"{name}: {kind} {list(shape)} {nbytes} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
