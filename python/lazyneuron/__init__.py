"""lazyneuron: activation-sparse inference for ReLU Transformers (ctypes binding).

    import lazyneuron as lzn
    with lzn.Model("tests/data/opt-preln") as model:
        with model.context(mlp_mode="sparse") as ctx:
            logits = ctx.forward([2, 96, 0, 1])      # numpy float32, shape (vocab,)
            print(logits.argmax(), ctx.stats()[0]["active_fraction"])

    with lzn.Model("models/tiny-opt") as model:      # a model with a tokenizer
        ids = model.tokenize("The meaning of life is")
        with model.context() as ctx:
            for piece in ctx.generate("The meaning of life is", 64, seed=4):
                print(piece, end="", flush=True)

No compiler is needed: the shared library is found through $LAZYNEURON_LIB,
then <repo>/build/liblazyneuron.so.0 (from the source tree), then the system's
library search path, then pkg-config's libdir for lazyneuron (_lib.candidates).
Install with `pip install --no-index --no-build-isolation ./python`;
`python -m lazyneuron.run` is lzn-run.
"""

from __future__ import annotations

import codecs
import enum
import operator
import os
import threading
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, TypeVar, Union

import ctypes

import numpy as np

from . import _lib

__all__ = [
    "Context",
    "LazyNeuronError",
    "Model",
    "ModelInfo",
    "Sampler",
    "Status",
    "TokenizerInfo",
    "apply_chat_template",
    "chat_template_name",
    "default_thread_count",
    "forward_batch",
    "forward_ragged",
    "isa",
    "isa_supported",
    "library_path",
    "version",
    "version_number",
]

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

# What the public methods take: text as str or bytes, token ids as a sequence
# of ints or a 1-D numpy integer array, paths as anything os.fspath takes.
Text = Union[str, bytes, bytearray, memoryview]
Tokens = Union[Sequence[int], np.ndarray]
# Chat messages: {"role": ..., "content": ...} dicts or (role, content) pairs.
Messages = Sequence[Union[Dict[str, str], Sequence[str]]]
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


class Status(enum.IntEnum):
    """lzn_status: explicit values that never change."""

    LZN_OK = 0
    LZN_ERR_INVALID_ARG = 1
    LZN_ERR_IO = 2
    LZN_ERR_FORMAT = 3
    LZN_ERR_UNSUPPORTED = 4
    LZN_ERR_NOMEM = 5
    LZN_ERR_CONTEXT_FULL = 6
    LZN_ERR_ISA = 7
    LZN_ERR_BACKEND = 8
    LZN_ERR_CANCELLED = 9


class LazyNeuronError(RuntimeError):
    """A lazyneuron call failed.

    .status is the lzn_status (an int), .status_name its name (lzn_status_str),
    .message what lzn_last_error() said.
    """

    def __init__(self, status_name, message, status=None):
        super().__init__(status_name, message)
        self.status_name = status_name
        self.message = message
        if status is None:
            status = Status[status_name] if status_name in Status.__members__ else -1
        self.status = int(status)

    def __str__(self):
        return f"{self.status_name}: {self.message}"


def _check(status):
    """Raises LazyNeuronError for a non-OK status, with this thread's message."""
    if status == 0:
        return
    lib = _lib.load()
    message = (lib.lzn_last_error() or b"").decode("utf-8", "replace")
    name = lib.lzn_status_str(status).decode("ascii", "replace")
    raise LazyNeuronError(name, message, status)


def _c_int(value, what, lo=_INT32_MIN, hi=_INT32_MAX, c_type="a C int"):
    """A Python int within [lo, hi], the range of c_type (ctypes would wrap
    it silently)."""
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, not {type(value).__name__}") from None
    if not lo <= v <= hi:
        raise ValueError(f"{what} = {v} does not fit {c_type}")
    return v


_C = TypeVar("_C", bound="_Closable")


class _Closable:
    """A C handle in self._handle that close() frees: `with` closes it, and
    so does the garbage collector if the caller did not. (A Model's contexts
    hold a reference to it, so normally none is left when it is collected;
    in a garbage cycle the finalizers run in any order and the last context
    frees the model then.)"""

    _handle = None

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None) is not None:
            self.close()


# ---------------------------------------------------------- module functions


def version() -> str:
    """The linked library's version, "MAJOR.MINOR.PATCH"."""
    return _lib.load().lzn_version_string().decode()


def version_number() -> int:
    """The linked library's LZN_VERSION_NUMBER (MAJOR*10000 + MINOR*100 + PATCH)."""
    return int(_lib.load().lzn_version_number())


def isa() -> Optional[str]:
    """The kernel ceiling in use ("scalar", "avx2", "avxvnni", "avx512", "avx512bf16"
    or "avx512vnni"); None if $LZN_ISA names one this machine cannot run, or
    $LZN_PREFETCH is neither l1 nor l2 (every model call then fails with
    LZN_ERR_ISA)."""
    name = _lib.load().lzn_isa_name()
    return name.decode() if name is not None else None


def isa_supported(name: str) -> bool:
    """Whether this CPU and OS can run the named ISA's kernels."""
    return bool(_lib.load().lzn_isa_supported(str(name).encode()))


def default_thread_count() -> int:
    """The physical cores this process may run on (its affinity mask, hyper-thread
    siblings once): lzn_default_thread_count(), lzn-run's default -t."""
    return int(_lib.load().lzn_default_thread_count())


def library_path() -> str:
    """The name or path liblazyneuron was loaded from."""
    return _lib.path()


# ------------------------------------------------------------------- model


@dataclass(frozen=True)
class ModelInfo:
    """lzn_model_info."""

    n_layers: int
    d_model: int
    d_ff: int
    n_heads: int
    vocab_size: int
    max_positions: int
    weight_type: str  # "f32", "f16", "bf16", "q8_0" or "q4_0": the matrices' type
    weight_bytes: int  # bytes of the weight matrices
    n_kv_heads: int
    head_dim: int
    gated: int  # 1 for the LLaMA family's gated MLP
    architecture: str  # "opt", "llama", "mistral", "bamboo"
    has_predictor: int  # layers with an activation predictor
    weight_bytes_by_type: Dict[str, int]  # the matrices' bytes per type present (a file may mix them)
    packed_bytes: int  # bytes of the packed copies made for batches (Model's pack_budget)


@dataclass(frozen=True)
class TokenizerInfo:
    """lzn_tokenizer_info."""

    vocab_size: int
    bos_id: int  # -1 when none
    eos_id: int  # -1 when none: generation stops on it
    add_bos: int  # 1: the model expects BOS before a prompt
    kind: str  # "byte-level", "gpt2" or "spm"


def _text_bytes(text):
    if isinstance(text, str):
        # surrogateescape keeps bytes that os.fsdecode and the like smuggled in
        return text.encode("utf-8", "surrogateescape")
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text)
    raise TypeError(f"text must be str or bytes, not {type(text).__name__}")


class Model(_Closable):
    """A loaded OPT model (Hugging Face folder, or a .safetensors file with
    config.json beside it). Read-only: share it across threads and contexts.

    weight_type: "as_stored" (default: F32/F16/BF16 kept as in the file), or
    "f32", "f16", "bf16", "q8_0", "q4_0" (converted or quantized at load).

    progress, if given, is called as progress(fraction_done) during the load;
    returning False cancels it (LazyNeuronError LZN_ERR_CANCELLED).

    pack_budget: bytes the loader may spend on packed copies of the Q8_0/Q4_0
    matrices that prompts and batches read whole (lzn_model_params.pack_budget);
    None (default) = all of them, 0 = none; info.packed_bytes says what was made.

    n_threads: threads for the load's own work (packed copies, the transposed
    W_down, conversions; lzn_model_params.n_threads), default 1.

    predictor_type: the activation predictor's matrices as stored (default) or
    converted at load, e.g. "q8_0" (lzn_model_params.predictor_type: a
    predictor.safetensors is F32; Q8_0 reads a quarter of its bytes a token).

    close() (or leaving a `with` block) releases the model as soon as no
    Context made from it is still open; contexts keep it alive until then.
    """

    info: ModelInfo
    path: Union[str, bytes]

    def __init__(self, path: PathLike, use_mmap: bool = True,
                 progress: Optional[Callable[[float], Optional[bool]]] = None,
                 weight_type: str = "as_stored", pack_budget: Optional[int] = None,
                 n_threads: int = 1, predictor_type: str = "as_stored") -> None:
        self._lock = threading.Lock()
        self._handle = None
        self._closed = False
        self._n_contexts = 0
        lib = _lib.load()
        self._lib = lib  # kept for __del__ at interpreter shutdown
        self.path = os.fspath(path)

        params = _lib.ModelParams()
        _check(lib.lzn_model_params_init(ctypes.byref(params), ctypes.sizeof(params)))
        params.use_mmap = 1 if use_mmap else 0
        params.n_threads = _c_int(n_threads, "n_threads")
        if pack_budget is not None:
            if isinstance(pack_budget, bool) or not isinstance(pack_budget, int) or pack_budget < 0:
                raise ValueError(f"pack_budget must be a byte count >= 0 or None, not {pack_budget!r}")
            params.pack_budget = min(pack_budget, ctypes.c_size_t(-1).value)
        weight_types = _lib.weight_types()
        for field, name in (("weight_type", weight_type), ("predictor_type", predictor_type)):
            if name not in weight_types:
                raise ValueError(f"{field} must be one of {sorted(weight_types)}, not {name!r}")
            setattr(params, field, weight_types[name])
        raised = []
        if progress is not None:

            def on_progress(fraction, _user_data):
                try:
                    return 0 if progress(float(fraction)) is False else 1
                except BaseException as e:  # noqa: BLE001 (re-raised below)
                    raised.append(e)
                    return 0

            callback = _lib.PROGRESS_FN(on_progress)
            params.progress = callback  # `callback` stays alive until the load returns

        handle = _lib.MODEL_P()
        status = lib.lzn_model_load(os.fsencode(path), ctypes.byref(params), ctypes.byref(handle))
        if raised:
            raise raised[0]
        _check(status)
        self._handle = handle
        info = _lib.sized(_lib.ModelInfo)
        _check(lib.lzn_model_get_info(handle, ctypes.byref(info)))
        fields = {f: getattr(info, f) for f, _ in _lib.ModelInfo._fields_ if f != "struct_size"}
        names = {v: k for k, v in _lib.weight_types().items()}
        fields["weight_type"] = names.get(fields["weight_type"], str(fields["weight_type"]))
        fields["architecture"] = fields["architecture"].decode()
        fields["weight_bytes_by_type"] = {names.get(t, str(t)): int(n)
                                          for t, n in enumerate(info.weight_bytes_by_type) if n}
        self.info = ModelInfo(**fields)

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------- text

    def _tokenizer(self):
        """The C tokenizer (LazyNeuronError LZN_ERR_UNSUPPORTED if the model has none)."""
        if self._closed:
            raise ValueError("the model is closed")
        tok = _lib.TOKENIZER_P()
        _check(self._lib.lzn_model_get_tokenizer(self._handle, ctypes.byref(tok)))
        return tok

    @property
    def tokenizer_info(self) -> TokenizerInfo:
        """The model's TokenizerInfo (LazyNeuronError LZN_ERR_UNSUPPORTED if it has none)."""
        info = _lib.sized(_lib.TokenizerInfo)
        _check(self._lib.lzn_tokenizer_get_info(self._tokenizer(), ctypes.byref(info)))
        return TokenizerInfo(info.vocab_size, info.bos_id, info.eos_id, info.add_bos,
                             info.kind.decode())

    def tokenize(self, text: Text, add_bos: Optional[bool] = None) -> List[int]:
        """Token ids (a list of ints) of text (str, or bytes: a byte-level model
        takes any bytes; invalid UTF-8 becomes U+FFFD for the others). add_bos:
        None = the model's convention, True/False to choose."""
        tok = self._tokenizer()
        data = _text_bytes(text)
        if add_bos is None:
            add_bos = self.tokenizer_info.add_bos
        n = ctypes.c_int(0)
        status = self._lib.lzn_tokenize(tok, data, len(data), 1 if add_bos else 0, None, 0,
                                        ctypes.byref(n))
        if status != 0 and n.value == 0:
            _check(status)
        out = (ctypes.c_int32 * max(n.value, 1))()
        _check(self._lib.lzn_tokenize(tok, data, len(data), 1 if add_bos else 0, out, n.value,
                                      ctypes.byref(n)))
        return list(out[:n.value])

    def detokenize_bytes(self, tokens: Tokens) -> bytes:
        """The bytes of token ids (what lzn_detokenize writes)."""
        tok = self._tokenizer()
        arr = _tokens_array(tokens)
        ptr = arr.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))
        n = ctypes.c_size_t(0)
        status = self._lib.lzn_detokenize(tok, ptr, _c_int(arr.shape[0], "len(tokens)"), None, 0,
                                          ctypes.byref(n))
        if status != 0 and n.value == 0 and arr.shape[0] > 0:
            _check(status)
        buf = ctypes.create_string_buffer(n.value + 1)
        _check(self._lib.lzn_detokenize(tok, ptr, arr.shape[0], buf, n.value + 1, ctypes.byref(n)))
        return buf.raw[:n.value]

    def detokenize(self, tokens: Tokens) -> str:
        """The text of token ids (str; bytes that are not UTF-8 become U+FFFD)."""
        return self.detokenize_bytes(tokens).decode("utf-8", "replace")

    def token_to_piece(self, token: int) -> bytes:
        """The bytes one token prints as (b"" for BOS / EOS)."""
        tok = self._tokenizer()
        n = ctypes.c_size_t(0)
        buf = ctypes.create_string_buffer(256)
        status = self._lib.lzn_token_to_piece(tok, _c_int(token, "token"), buf, 256, ctypes.byref(n))
        if status != 0 and n.value > 256:
            buf = ctypes.create_string_buffer(n.value)
            status = self._lib.lzn_token_to_piece(tok, token, buf, n.value, ctypes.byref(n))
        _check(status)
        return buf.raw[:n.value]

    @property
    def chat_template(self) -> Optional[str]:
        """The chat template the model came with (its Jinja text, from GGUF
        tokenizer.chat_template or tokenizer_config.json), or None when it has
        none or no tokenizer."""
        if self._closed:
            raise ValueError("the model is closed")
        tok = _lib.TOKENIZER_P()
        if self._lib.lzn_model_get_tokenizer(self._handle, ctypes.byref(tok)) != 0:
            return None
        text = self._lib.lzn_tokenizer_chat_template(tok)
        return None if text is None else text.decode("utf-8", "replace")

    def apply_chat_template(self, messages: Messages, add_assistant: bool = True,
                            template: Optional[str] = None) -> str:
        """messages rendered as a prompt (lzn_chat_apply_template) with
        template, by default the model's own (ChatML for a model that has
        none). A template of no known family raises LazyNeuronError
        LZN_ERR_UNSUPPORTED: pass template="chatml" (or another family's
        name) to choose one."""
        return apply_chat_template(self.chat_template if template is None else template,
                                   messages, add_assistant)

    def context(self, n_ctx: int = 0, n_threads: int = 1, mlp_mode: str = "auto",
                auto_crossover: float = 0.0, collect_stats: bool = True, top_k: int = 0,
                threshold: float = 0.0, kv_type: str = "f16",
                use_predictor: bool = True) -> Context:
        """A new Context (one sequence: KV cache and statistics) on this model."""
        return Context(self, n_ctx=n_ctx, n_threads=n_threads, mlp_mode=mlp_mode,
                       auto_crossover=auto_crossover, collect_stats=collect_stats,
                       top_k=top_k, threshold=threshold, kv_type=kv_type,
                       use_predictor=use_predictor)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._free_if_unused()

    # Contexts register here so that the C model outlives every C context.
    def _acquire(self):
        with self._lock:
            if self._closed:
                raise ValueError("the model is closed")
            self._n_contexts += 1
            return self._handle

    def _release(self):
        with self._lock:
            self._n_contexts -= 1
            self._free_if_unused()

    def _free_if_unused(self):
        if self._closed and self._n_contexts == 0 and self._handle is not None:
            handle, self._handle = self._handle, None
            self._lib.lzn_model_free(handle)

    def __repr__(self):
        state = "closed" if self._closed else "open"
        return f"<lazyneuron.Model {self.path!r} {state} {self.info}>"


# ----------------------------------------------------------------- context


def _tokens_array(tokens):
    """tokens as a contiguous int32 array, checking only types (the library
    checks the vocabulary range, so its messages reach the caller)."""
    if isinstance(tokens, np.ndarray):
        if tokens.dtype.kind not in "iu":
            raise TypeError(f"tokens must be integers, not a {tokens.dtype} array")
        if tokens.ndim > 1:
            raise ValueError(f"tokens must be 1-D, not of shape {tokens.shape}")
        arr = tokens.reshape(-1)
    elif isinstance(tokens, (str, bytes)) or not hasattr(tokens, "__iter__"):
        raise TypeError(f"tokens must be a sequence of ints, not {type(tokens).__name__}")
    else:
        values = []
        for i, t in enumerate(tokens):
            try:
                if isinstance(t, (bool, np.bool_)):
                    raise TypeError
                values.append(operator.index(t))  # int or numpy integer; never float
            except TypeError:
                raise TypeError(f"tokens[{i}] = {t!r} is not an int") from None
        arr = np.array(values, dtype=np.int64)
    if arr.size and (arr.min() < _INT32_MIN or arr.max() > _INT32_MAX):
        raise ValueError("a token id does not fit int32")
    return np.ascontiguousarray(arr, dtype=np.int32)


class Context(_Closable):
    """One sequence on a Model: the KV cache, scratch buffers and per-layer
    statistics. Use from one thread at a time. Keeps its Model alive.

    kv_type is how the KV cache stores keys and values: "f16" (the default,
    like llama.cpp), "f32" (exact), "bf16" or "q8_0" (llama.cpp's block_q8_0
    over each head's values). use_predictor: whether the model's activation
    predictor, if it has one, is used (lzn_context_params.use_predictor)."""

    def __init__(self, model: Model, n_ctx: int = 0, n_threads: int = 1, mlp_mode: str = "auto",
                 auto_crossover: float = 0.0, collect_stats: bool = True, top_k: int = 0,
                 threshold: float = 0.0, kv_type: str = "f16", use_predictor: bool = True) -> None:
        if not isinstance(mlp_mode, str) or mlp_mode not in _lib.MLP_MODES:
            raise ValueError(f"mlp_mode must be one of {sorted(_lib.MLP_MODES)}, "
                             f"not {mlp_mode!r}")
        kv_types = _lib.kv_types()
        if not isinstance(kv_type, str) or kv_type not in kv_types:
            raise ValueError(f"kv_type must be one of {sorted(kv_types)}, "
                             f"not {kv_type!r}")
        lib = model._lib
        params = lib.lzn_context_default_params()
        params.n_ctx = _c_int(n_ctx, "n_ctx")
        params.n_threads = _c_int(n_threads, "n_threads")
        params.mlp_mode = _lib.MLP_MODES[mlp_mode]
        params.auto_crossover = float(auto_crossover)
        params.collect_stats = 1 if collect_stats else 0
        params.top_k = int(top_k)
        params.threshold = float(threshold)
        params.kv_type = kv_types[kv_type]
        params.use_predictor = 1 if use_predictor else 0

        self._lib = lib
        self._handle = None
        self.model = model
        self.mlp_mode = mlp_mode
        self.kv_type = kv_type
        self.n_threads = params.n_threads
        model_handle = model._acquire()
        try:
            handle = _lib.CONTEXT_P()
            _check(lib.lzn_context_create(model_handle, ctypes.byref(params),
                                          ctypes.byref(handle)))
        except BaseException:
            model._release()
            raise
        self._handle = handle

    def _live(self):
        if self._handle is None:
            raise ValueError("the context is closed")
        return self._handle

    @property
    def closed(self) -> bool:
        return self._handle is None

    @property
    def n_past(self) -> int:
        """Number of tokens in the KV cache."""
        return int(self._lib.lzn_context_n_past(self._live()))

    def forward(self, tokens: Tokens, all_logits: bool = False) -> np.ndarray:
        """Appends tokens (ints: a list, or a numpy integer array) to the
        sequence. Returns float32 logits: shape (vocab,) for the last token, or
        (len(tokens), vocab) with all_logits=True. On error the KV cache is
        unchanged."""
        handle = self._live()
        arr = _tokens_array(tokens)
        n = arr.shape[0]
        vocab = self.model.info.vocab_size
        # n == 0 is passed on: the library reports it as LZN_ERR_INVALID_ARG.
        out = np.empty((max(n, 1), vocab) if all_logits else (vocab,), dtype=np.float32)
        _check(self._lib.lzn_forward(
            handle,
            arr.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
            _c_int(n, "len(tokens)"),
            out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            _lib.LOGITS_ALL if all_logits else _lib.LOGITS_LAST,
        ))
        return out

    def generate(self, prompt: Text, n: int, temperature: float = 0.8, top_k: int = 40,
                 top_p: float = 0.95, min_p: float = 0.05, repetition_penalty: float = 1.0,
                 repeat_last_n: int = 64, seed: int = 0) -> Iterator[str]:
        """Continues the sequence with prompt (str or bytes; BOS first, as the
        model expects, if the context is empty) and yields the text of up to n
        generated tokens, piece by piece (str; a UTF-8 character split over
        tokens comes out whole). Stops early at the tokenizer's EOS. Sampling
        is lzn_sampler's with these parameters (temperature 0 = greedy): what
        lzn-run does with the same options."""
        model = self.model
        info = model.tokenizer_info
        tokens = model.tokenize(prompt, add_bos=bool(info.add_bos) and self.n_past == 0)
        if not tokens:
            raise ValueError("the prompt is empty")
        vocab = model.info.vocab_size
        with Sampler(vocab, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                     repetition_penalty=repetition_penalty, repeat_last_n=repeat_last_n,
                     seed=seed) as sampler:
            for t in tokens:
                if t < vocab:
                    sampler.accept(t)
            budget = min(int(n), model.info.max_positions - self.n_past - len(tokens))
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            logits = self.forward(tokens)
            for i in range(budget):
                token = sampler.sample(logits)
                if token == info.eos_id:
                    break
                piece = model.token_to_piece(token) if token < info.vocab_size else b""
                text = decoder.decode(piece)
                if text:
                    yield text
                if i + 1 < budget:
                    logits = self.forward([token])
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail

    def reset(self) -> None:
        """Empties the KV cache and the statistics."""
        _check(self._lib.lzn_context_reset(self._live()))

    def truncate(self, n_keep: int) -> None:
        """Keeps the first n_keep tokens of the sequence and forgets the rest
        (lzn_context_truncate): the next forward continues at position
        n_keep. Statistics are kept."""
        _check(self._lib.lzn_context_truncate(self._live(), _c_int(n_keep, "n_keep")))

    def copy_prefix(self, src: Context, n_tokens: int) -> None:
        """Makes this context's sequence the first n_tokens of src's, their
        KV cache copied (lzn_context_copy_prefix): a shared prompt run once
        starts many sequences. Both contexts must be of one model and KV type."""
        if not isinstance(src, Context):
            raise TypeError(f"src must be a Context, not {type(src).__name__}")
        _check(self._lib.lzn_context_copy_prefix(self._live(), src._live(),
                                                 _c_int(n_tokens, "n_tokens")))

    @property
    def kv_bytes(self) -> int:
        """Bytes of the KV cache (every layer, n_ctx positions, in kv_type)."""
        return int(self._lib.lzn_context_kv_bytes(self._live()))

    def save_state(self) -> bytes:
        """The sequence as bytes (lzn_context_state_save: the KV cache of the
        first n_past positions, n_past, the model's shape and a checksum), to
        resume later with load_state on a context of a model of the same shape
        and KV type. Statistics are not part of it."""
        handle = self._live()
        size = int(self._lib.lzn_context_state_size(handle))
        buf = ctypes.create_string_buffer(max(size, 1))
        written = ctypes.c_size_t(0)
        _check(self._lib.lzn_context_state_save(handle, buf, size, ctypes.byref(written)))
        return buf.raw[:written.value]

    def load_state(self, state: Union[bytes, bytearray, memoryview]) -> None:
        """Replaces the sequence with one save_state returned. Another
        model's shape or KV type: LazyNeuronError LZN_ERR_INVALID_ARG; bytes
        that are not a state (or damaged): LZN_ERR_FORMAT. Nothing changes on
        error."""
        if not isinstance(state, (bytes, bytearray, memoryview)):
            raise TypeError(f"state must be bytes, not {type(state).__name__}")
        data = bytes(state)
        buf = ctypes.create_string_buffer(data, max(len(data), 1))
        _check(self._lib.lzn_context_state_load(self._live(), buf, len(data)))

    def stats(self) -> List[Dict[str, float]]:
        """Per-layer MLP statistics since creation or reset(): a list (one per
        layer) of dicts with every lzn_layer_stats field."""
        handle = self._live()
        n_layers = self.model.info.n_layers
        arr = (_lib.LayerStats * n_layers)()
        arr[0].struct_size = ctypes.sizeof(_lib.LayerStats)  # each element's size
        _check(self._lib.lzn_context_stats(handle, arr, n_layers))
        return [{name: getattr(s, name) for name, _ in _lib.LayerStats._fields_ if name != "struct_size"}
                for s in arr]

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            self._lib.lzn_context_free(handle)
            self.model._release()

    def __repr__(self):
        if self.closed:
            return "<lazyneuron.Context closed>"
        return (f"<lazyneuron.Context mode={self.mlp_mode} threads={self.n_threads} "
                f"n_past={self.n_past}>")


# ------------------------------------------------------------------ sampler


class Sampler(_Closable):
    """lzn_sampler: picks the next token from logits as lzn-run and lzn-server
    do (temperature 0 = greedy; top_k 0 = all tokens; top_p 1 and min_p 0 =
    off; repetition_penalty 1 = off), so a loop over forward_batch samples
    each sequence as the C programs would with its own Sampler. A value out
    of range raises LazyNeuronError LZN_ERR_INVALID_ARG naming the field.
    Use from one thread at a time; close() (or a `with` block) frees it."""

    def __init__(self, vocab_size: int, temperature: float = 0.8, top_k: int = 40,
                 top_p: float = 0.95, min_p: float = 0.05, repetition_penalty: float = 1.0,
                 repeat_last_n: int = 64, seed: int = 0) -> None:
        self._handle = None
        lib = _lib.load()
        self._lib = lib
        params = lib.lzn_sampler_default_params()
        params.temperature, params.top_p, params.min_p = float(temperature), float(top_p), float(min_p)
        params.top_k = _c_int(top_k, "top_k")
        params.repetition_penalty = float(repetition_penalty)
        params.repeat_last_n = _c_int(repeat_last_n, "repeat_last_n")
        params.seed = _seed(seed)
        self.vocab_size = _c_int(vocab_size, "vocab_size")
        self.seed = params.seed
        handle = _lib.SAMPLER_P()
        _check(lib.lzn_sampler_create(ctypes.byref(params), self.vocab_size, ctypes.byref(handle)))
        self._handle = handle

    def _live(self):
        if self._handle is None:
            raise ValueError("the sampler is closed")
        return self._handle

    def accept(self, token: int) -> None:
        """Records a token (of the prompt, say) for the repetition penalty."""
        _check(self._lib.lzn_sampler_accept(self._live(), _c_int(token, "token")))

    def sample(self, logits: np.ndarray) -> int:
        """The next token from logits (vocab_size floats, e.g. a row of
        forward_batch's result), accepted for the repetition penalty. NaN and
        -inf are never picked; all of them is LZN_ERR_INVALID_ARG."""
        arr = np.ascontiguousarray(logits, dtype=np.float32)
        if arr.shape != (self.vocab_size,):
            raise ValueError(f"logits of shape {arr.shape}, the sampler takes ({self.vocab_size},)")
        token = ctypes.c_int32(0)
        _check(self._lib.lzn_sampler_sample(self._live(), arr.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                            ctypes.byref(token)))
        return int(token.value)

    def reset(self, seed: Optional[int] = None) -> None:
        """Forgets the accepted tokens and restarts the generator at seed
        (None: the seed it was made with)."""
        _check(self._lib.lzn_sampler_reset(self._live(), self.seed if seed is None else _seed(seed)))

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            self._lib.lzn_sampler_free(handle)

    def __repr__(self):
        state = "closed" if self._handle is None else f"vocab={self.vocab_size}"
        return f"<lazyneuron.Sampler {state}>"


def _seed(value):
    """A seed as the C uint64_t."""
    return _c_int(value, "seed", 0, 2**64 - 1, "a uint64_t")


# ----------------------------------------------------------- many sequences


def _handles(contexts):
    """The C handles of contexts (a sequence of open Contexts) as an array,
    and the largest vocabulary among their models (the library rejects
    contexts of different models before it writes any logits)."""
    if isinstance(contexts, Context) or not hasattr(contexts, "__len__"):
        raise TypeError("contexts must be a sequence of Context objects")
    handles = []
    for i, c in enumerate(contexts):
        if not isinstance(c, Context):
            raise TypeError(f"contexts[{i}] is a {type(c).__name__}, not a Context")
        handles.append(c._live())
    vocab = max((c.model.info.vocab_size for c in contexts), default=1)
    return (_lib.CONTEXT_P * max(len(handles), 1))(*handles), len(handles), vocab


def forward_batch(contexts: Sequence[Context], tokens: Tokens) -> np.ndarray:
    """One decoding step of several sequences at once (lzn_forward_batch):
    appends tokens[i] to contexts[i] and returns the logits, float32 of shape
    (len(contexts), vocab). Every weight is read once for the step (the MLP
    over the union of the tokens' active neurons, or dense); attention runs
    per sequence against its own cache. The contexts belong to one model,
    appear once, may be at different positions; the step's MLP statistics
    count in contexts[0]; threads: contexts[0]'s. On error no context
    advances."""
    array, n, vocab = _handles(contexts)
    arr = _tokens_array(tokens)
    if arr.shape[0] != n:
        raise ValueError(f"{arr.shape[0]} tokens for {n} contexts: one token per context")
    # n == 0 is passed on: the library reports it as LZN_ERR_INVALID_ARG.
    out = np.empty((max(n, 1), vocab), dtype=np.float32)
    _check(_lib.load().lzn_forward_batch(
        array, arr.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), n,
        out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))))
    return out[:n]


def forward_ragged(contexts: Sequence[Context], tokens: Sequence[Tokens]) -> np.ndarray:
    """One step of several sequences that each append their own tokens
    (lzn_forward_ragged): contexts[i] appends tokens[i] (a list or 1-D
    integer array, at least one token: a prompt's chunk beside single decoded
    tokens). Returns the logits of each sequence's last token, float32 of
    shape (len(contexts), vocab). The rules of forward_batch otherwise; where
    a step is compute-bound a prompt alone (Context.forward) beside
    forward_batch can be faster (the header says when). On error no context
    advances."""
    array, n, vocab = _handles(contexts)
    if isinstance(tokens, (str, bytes, np.ndarray)) or not hasattr(tokens, "__len__"):
        raise TypeError("tokens must be a sequence of token sequences, one per context")
    if len(tokens) != n:
        raise ValueError(f"{len(tokens)} token sequences for {n} contexts")
    parts = [_tokens_array(t) for t in tokens]
    counts = (ctypes.c_int * max(n, 1))(*(_c_int(p.shape[0], f"len(tokens[{i}])")
                                          for i, p in enumerate(parts)))
    flat = np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0), dtype=np.int32)
    out = np.empty((max(n, 1), vocab), dtype=np.float32)
    _check(_lib.load().lzn_forward_ragged(
        array, flat.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), counts, n,
        out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))))
    return out[:n]


# ------------------------------------------------------------------- chat


def _c_text(value, what):
    """value (str) as NUL-terminated UTF-8 for the C library."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    data = value.encode("utf-8")  # a lone surrogate: UnicodeEncodeError, a ValueError
    if b"\0" in data:
        raise ValueError(f"{what} contains a NUL character")
    return data


def chat_template_name(template: Optional[str]) -> Optional[str]:
    """The family a chat template renders as ("chatml", "llama2", "llama3",
    "mistral", "zephyr", "phi3", "vicuna", "gemma"; lzn_chat_template_name):
    template is a template's text or a family's name, None is "chatml".
    None for a template of no known family."""
    tmpl = None if template is None else _c_text(template, "template")
    name = _lib.load().lzn_chat_template_name(tmpl)
    return None if name is None else name.decode()


def apply_chat_template(template: Optional[str], messages: Messages,
                        add_assistant: bool = True) -> str:
    """messages rendered as a prompt with template (a template's text or a
    family's name; None = ChatML), and with add_assistant the opening of the
    assistant's turn, so the model's continuation is the reply
    (lzn_chat_apply_template, what lzn-run and lzn-server render). messages:
    dicts with "role" ("system" or "developer", "user", "assistant") and
    "content", or (role, content) pairs. BOS is not written (tokenize adds
    it). An unknown role: LazyNeuronError LZN_ERR_INVALID_ARG naming the
    message; a template of no known family: LZN_ERR_UNSUPPORTED."""
    if isinstance(messages, (str, bytes, dict)) or not hasattr(messages, "__len__"):
        raise TypeError("messages must be a sequence of {'role', 'content'} dicts or pairs")
    pairs = []
    for i, m in enumerate(messages):
        if isinstance(m, dict):
            if "role" not in m or "content" not in m:
                raise ValueError(f"messages[{i}] needs 'role' and 'content'")
            role, content = m["role"], m["content"]
        elif isinstance(m, (tuple, list)) and len(m) == 2:
            role, content = m
        else:
            raise TypeError(f"messages[{i}] must be a dict or a (role, content) pair")
        pairs.append((_c_text(role, f"messages[{i}] role"), _c_text(content, f"messages[{i}] content")))
    array = (_lib.ChatMessage * max(len(pairs), 1))(*pairs)
    tmpl = None if template is None else _c_text(template, "template")
    lib = _lib.load()
    n = ctypes.c_size_t(0)
    status = lib.lzn_chat_apply_template(tmpl, array, len(pairs), 1 if add_assistant else 0, None, 0,
                                         ctypes.byref(n))
    if status != 0 and n.value == 0:
        _check(status)
    buf = ctypes.create_string_buffer(n.value + 1)
    _check(lib.lzn_chat_apply_template(tmpl, array, len(pairs), 1 if add_assistant else 0, buf,
                                       n.value + 1, ctypes.byref(n)))
    return buf.raw[:n.value].decode("utf-8")
