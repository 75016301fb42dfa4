"""Finding and loading liblazyneuron.so.0, and the C declarations of lazyneuron.h.

The structures below mirror include/lazyneuron.h field for field; load() checks
their sizes against the struct_size that lzn_*_default_params() reports (and
lzn_model_params_init accepts), so a header that grew a field without this file
following fails loudly, not subtly.
"""

import ctypes
import ctypes.util
import os
import subprocess
import threading
from pathlib import Path

SONAME = "liblazyneuron.so.0"
ABI_MAJOR = 0  # LZN_VERSION_MAJOR this binding was written against

# ------------------------------------------------------------ structures


class ModelParams(ctypes.Structure):
    """lzn_model_params."""


PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_float, ctypes.c_void_p)

ModelParams._fields_ = [
    ("struct_size", ctypes.c_size_t),
    ("use_mmap", ctypes.c_int),
    ("progress", PROGRESS_FN),
    ("progress_user_data", ctypes.c_void_p),
    ("weight_type", ctypes.c_int),
    ("predictor_path", ctypes.c_char_p),
    # 0.4: set by lzn_model_params_init (lzn_model_default_params returns the
    # 0.3 struct without them)
    ("down_t_type", ctypes.c_int),
    ("pack_budget", ctypes.c_size_t),
    ("n_threads", ctypes.c_int),
    ("predictor_type", ctypes.c_int),
]

WEIGHT_TYPE_SLOTS = 16  # LZN_WEIGHT_TYPE_SLOTS


class ContextParams(ctypes.Structure):
    """lzn_context_params (lzn_mlp_mode is a C enum: an int)."""

    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("n_ctx", ctypes.c_int),
        ("n_threads", ctypes.c_int),
        ("mlp_mode", ctypes.c_int),
        ("auto_crossover", ctypes.c_float),
        ("collect_stats", ctypes.c_int),
        ("top_k", ctypes.c_int),
        ("threshold", ctypes.c_float),
        ("use_predictor", ctypes.c_int),
        ("predictor_threshold", ctypes.c_float),
        ("collect_recall", ctypes.c_int),
        ("kv_type", ctypes.c_int),  # lzn_kv_type, see kv_types()
    ]


# lzn_kv_type: how the KV cache stores keys and values.


class ModelInfo(ctypes.Structure):
    """lzn_model_info."""

    _fields_ = [("struct_size", ctypes.c_size_t)] + [
        (name, ctypes.c_int)
        for name in ("n_layers", "d_model", "d_ff", "n_heads", "vocab_size", "max_positions",
                     "weight_type")
    ] + [("weight_bytes", ctypes.c_int64), ("n_kv_heads", ctypes.c_int), ("head_dim", ctypes.c_int),
         ("gated", ctypes.c_int), ("architecture", ctypes.c_char_p), ("has_predictor", ctypes.c_int),
         # 0.4
         ("weight_bytes_by_type", ctypes.c_int64 * WEIGHT_TYPE_SLOTS), ("packed_bytes", ctypes.c_int64)]


class LayerStats(ctypes.Structure):
    """lzn_layer_stats."""

    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("tokens", ctypes.c_int64),
        ("active_fraction", ctypes.c_double),
        ("never_fired", ctypes.c_int64),
        ("flops_dense", ctypes.c_double),
        ("flops_executed", ctypes.c_double),
        ("bytes_dense", ctypes.c_double),
        ("bytes_executed", ctypes.c_double),
        ("sparse_calls", ctypes.c_int64),
        ("dense_calls", ctypes.c_int64),
        ("seconds_attention", ctypes.c_double),
        ("seconds_up", ctypes.c_double),
        ("seconds_down", ctypes.c_double),
        ("union_fraction", ctypes.c_double),
        ("bytes_per_token_sparse", ctypes.c_double),
    ]


class SamplerParams(ctypes.Structure):
    """lzn_sampler_params."""

    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("temperature", ctypes.c_float),
        ("top_k", ctypes.c_int),
        ("top_p", ctypes.c_float),
        ("min_p", ctypes.c_float),
        ("repetition_penalty", ctypes.c_float),
        ("repeat_last_n", ctypes.c_int),
        ("seed", ctypes.c_uint64),
    ]


class TokenizerInfo(ctypes.Structure):
    """lzn_tokenizer_info."""

    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("vocab_size", ctypes.c_int),
        ("bos_id", ctypes.c_int32),
        ("eos_id", ctypes.c_int32),
        ("add_bos", ctypes.c_int),
        ("kind", ctypes.c_char_p),
    ]


def sized(struct_type):
    """An output struct with its struct_size set, as the library wants it."""
    s = struct_type()
    s.struct_size = ctypes.sizeof(struct_type)
    return s


class _Opaque(ctypes.Structure):
    pass


class lzn_model(_Opaque):  # noqa: N801 (the C name)
    pass


class lzn_context(_Opaque):  # noqa: N801
    pass


class lzn_tokenizer(_Opaque):  # noqa: N801
    pass


class lzn_sampler(_Opaque):  # noqa: N801
    pass


class ChatMessage(ctypes.Structure):
    """lzn_chat_message."""

    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


MODEL_P = ctypes.POINTER(lzn_model)
CONTEXT_P = ctypes.POINTER(lzn_context)
TOKENIZER_P = ctypes.POINTER(lzn_tokenizer)
SAMPLER_P = ctypes.POINTER(lzn_sampler)

# Enum values: part of the C ABI, never renumbered.
MLP_MODES = {"auto": 0, "sparse": 1, "dense": 2}
LOGITS_LAST, LOGITS_ALL = 0, 1

def _names(name_of):
    """{lower-case name: value} of an enum whose values run from 0 until the
    library's name function returns NULL: the library keeps the list."""
    out, value = {}, 0
    while (name := name_of(value)) is not None:
        out[name.decode().lower()] = value
        value += 1
    return out


def weight_types():
    """lzn_weight_type by name: {"as_stored": 0, "f32": 1, ...}, from the library."""
    return _names(load().lzn_weight_type_name)


def kv_types():
    """lzn_kv_type by name: {"f32": 0, "f16": 1, ...}, from the library."""
    return _names(load().lzn_kv_type_name)


# ------------------------------------------------------------ prototypes

_c_int, _c_char_p, _status = ctypes.c_int, ctypes.c_char_p, ctypes.c_int
_PROTOTYPES = {
    "lzn_version_number": (ctypes.c_uint, []),
    "lzn_version_string": (_c_char_p, []),
    "lzn_status_str": (_c_char_p, [_status]),
    "lzn_last_error": (_c_char_p, []),
    "lzn_isa_name": (_c_char_p, []),
    "lzn_isa_supported": (_c_int, [_c_char_p]),
    "lzn_weight_type_name": (_c_char_p, [_c_int]),
    "lzn_kv_type_name": (_c_char_p, [_c_int]),
    "lzn_default_thread_count": (_c_int, []),
    "lzn_model_params_init": (_status, [ctypes.POINTER(ModelParams), ctypes.c_size_t]),
    "lzn_context_default_params": (ContextParams, []),
    "lzn_model_load": (_status, [_c_char_p, ctypes.POINTER(ModelParams), ctypes.POINTER(MODEL_P)]),
    "lzn_model_free": (None, [MODEL_P]),
    "lzn_model_get_info": (_status, [MODEL_P, ctypes.POINTER(ModelInfo)]),
    "lzn_context_create": (
        _status,
        [MODEL_P, ctypes.POINTER(ContextParams), ctypes.POINTER(CONTEXT_P)],
    ),
    "lzn_context_free": (None, [CONTEXT_P]),
    "lzn_forward": (
        _status,
        [CONTEXT_P, ctypes.POINTER(ctypes.c_int32), _c_int, ctypes.POINTER(ctypes.c_float), _c_int],
    ),
    "lzn_forward_batch": (
        _status,
        [ctypes.POINTER(CONTEXT_P), ctypes.POINTER(ctypes.c_int32), _c_int, ctypes.POINTER(ctypes.c_float)],
    ),
    "lzn_forward_ragged": (
        _status,
        [ctypes.POINTER(CONTEXT_P), ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(_c_int), _c_int,
         ctypes.POINTER(ctypes.c_float)],
    ),
    "lzn_context_n_past": (_c_int, [CONTEXT_P]),
    "lzn_context_truncate": (_status, [CONTEXT_P, _c_int]),
    "lzn_context_copy_prefix": (_status, [CONTEXT_P, CONTEXT_P, _c_int]),
    "lzn_context_kv_bytes": (ctypes.c_int64, [CONTEXT_P]),
    "lzn_context_state_size": (ctypes.c_int64, [CONTEXT_P]),
    "lzn_context_state_save": (
        _status, [CONTEXT_P, ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]),
    "lzn_context_state_load": (_status, [CONTEXT_P, ctypes.c_void_p, ctypes.c_size_t]),
    "lzn_context_reset": (_status, [CONTEXT_P]),
    "lzn_context_stats": (_status, [CONTEXT_P, ctypes.POINTER(LayerStats), _c_int]),
    "lzn_model_get_tokenizer": (_status, [MODEL_P, ctypes.POINTER(TOKENIZER_P)]),
    "lzn_tokenizer_get_info": (_status, [TOKENIZER_P, ctypes.POINTER(TokenizerInfo)]),
    "lzn_tokenize": (
        _status,
        [TOKENIZER_P, ctypes.c_char_p, ctypes.c_size_t, _c_int, ctypes.POINTER(ctypes.c_int32),
         _c_int, ctypes.POINTER(_c_int)],
    ),
    "lzn_token_to_piece": (
        _status,
        [TOKENIZER_P, ctypes.c_int32, ctypes.c_char_p, ctypes.c_size_t,
         ctypes.POINTER(ctypes.c_size_t)],
    ),
    "lzn_detokenize": (
        _status,
        [TOKENIZER_P, ctypes.POINTER(ctypes.c_int32), _c_int, ctypes.c_char_p, ctypes.c_size_t,
         ctypes.POINTER(ctypes.c_size_t)],
    ),
    "lzn_tokenizer_chat_template": (_c_char_p, [TOKENIZER_P]),
    "lzn_chat_template_name": (_c_char_p, [_c_char_p]),
    "lzn_chat_apply_template": (
        _status,
        [_c_char_p, ctypes.POINTER(ChatMessage), ctypes.c_size_t, _c_int, ctypes.c_char_p,
         ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)],
    ),
    "lzn_sampler_default_params": (SamplerParams, []),
    "lzn_sampler_create": (_status, [ctypes.POINTER(SamplerParams), _c_int,
                                     ctypes.POINTER(SAMPLER_P)]),
    "lzn_sampler_free": (None, [SAMPLER_P]),
    "lzn_sampler_accept": (_status, [SAMPLER_P, ctypes.c_int32]),
    "lzn_sampler_sample": (_status, [SAMPLER_P, ctypes.POINTER(ctypes.c_float),
                                     ctypes.POINTER(ctypes.c_int32)]),
    "lzn_sampler_reset": (_status, [SAMPLER_P, ctypes.c_uint64]),
}

# ---------------------------------------------------------------- loading


def _pkg_config_libdir():
    """lazyneuron.pc's libdir (what `make install PREFIX=...` wrote), or None.

    pkg-config searches its default path and $PKG_CONFIG_PATH, so this finds a
    copy that the loader does not: a prefix outside ld.so.conf, or /usr/local
    before anyone ran ldconfig."""
    try:
        out = subprocess.run(["pkg-config", "--variable=libdir", "lazyneuron"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    libdir = out.stdout.strip()
    return libdir if out.returncode == 0 and libdir else None


def candidates():
    """Where the library is looked for, in order: (description, name or path)."""
    env = os.environ.get("LAZYNEURON_LIB")
    if env:
        # An explicit choice is final: no silent fallback to another copy.
        return [("$LAZYNEURON_LIB", env)]
    found = []
    # Run from the source tree, <repo>/python/lazyneuron/_lib.py: the build's
    # copy first. A pip-installed package (site-packages) has no build tree.
    repo = Path(__file__).resolve().parents[2]
    if (repo / "include" / "lazyneuron.h").is_file():
        found.append(("build tree", str(repo / "build" / SONAME)))
    found.append(("installed", SONAME))  # dlopen's own search: LD_LIBRARY_PATH, ld.so.cache
    name = ctypes.util.find_library("lazyneuron")
    if name and name != SONAME:
        found.append(("installed (find_library)", name))
    libdir = _pkg_config_libdir()
    if libdir:
        found.append(("pkg-config libdir", os.path.join(libdir, SONAME)))
    return found


_lock = threading.Lock()
_lib = None
_path = None


def _declare(lib, where):
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise OSError(f"{where}: no symbol {name} (a build older than this binding?)") from None
        fn.restype, fn.argtypes = restype, argtypes


def _check_abi(lib, where):
    major = lib.lzn_version_number() // 10000
    if major != ABI_MAJOR:
        raise OSError(f"{where}: liblazyneuron major version {major}, this binding needs {ABI_MAJOR}")
    # lzn_model_params grew in 0.4: the library fills the binding's size or
    # refuses it (a library older than the binding).
    if lib.lzn_model_params_init(ctypes.byref(ModelParams()), ctypes.sizeof(ModelParams)) != 0:
        raise OSError(f"{where}: lzn_model_params_init refuses the binding's {ctypes.sizeof(ModelParams)}-byte "
                      "ModelParams: lazyneuron.h and python/lazyneuron/_lib.py disagree")
    for fn, struct in (("lzn_context_default_params", ContextParams),
                       ("lzn_sampler_default_params", SamplerParams)):
        size = getattr(lib, fn)().struct_size
        if size != ctypes.sizeof(struct):
            raise OSError(f"{where}: {fn}().struct_size = {size} but the binding's "
                          f"{struct.__name__} has {ctypes.sizeof(struct)} bytes: "
                          "lazyneuron.h and python/lazyneuron/_lib.py disagree")


def _dlclose(lib):
    try:
        import _ctypes

        _ctypes.dlclose(lib._handle)
    except (ImportError, AttributeError, OSError):
        pass


def load():
    """The loaded library (once per process), or OSError saying what was tried."""
    global _lib, _path
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for where, name in candidates():
            if os.sep in name and not os.path.exists(name):
                tried.append(f"{where}: {name}: no such file")
                continue
            try:
                lib = ctypes.CDLL(name)
            except OSError as e:
                tried.append(f"{where}: {e}")
                continue
            try:
                _declare(lib, name)
                _check_abi(lib, name)
            except OSError as e:
                # An incompatible copy counts as not found. Unload it, or dlopen
                # would hand it back for the next candidate, which has its soname.
                tried.append(f"{where}: {e}")
                _dlclose(lib)
                continue
            _lib, _path = lib, name
            return lib
        raise OSError("liblazyneuron not found (set LAZYNEURON_LIB to the path of "
                      f"{SONAME}); tried:\n  " + "\n  ".join(tried))


def path():
    """The name or path the library was loaded from (loads it if needed)."""
    load()
    return _path
