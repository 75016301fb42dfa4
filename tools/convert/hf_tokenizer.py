#!/usr/bin/python3
"""A Hugging Face folder's tokenizer as GGUF metadata (tokenizer.ggml.*), the keys and
token types llama.cpp's converter writes, for tools/convert/lzn_convert.py. Plain Python.

    from hf_tokenizer import tokenizer_metadata, TokenizerError
    meta, summary, templates = tokenizer_metadata(folder, config, "opt" or "llama", n_vocab)

What is read, first found first:
  lazyneuron_tokenizer.json  lazyneuron's byte-level tokenizer (the tiny models): written
      as GPT-2 BPE over the 256 bytes with no merges (what llama.cpp runs the same way, for
      valid UTF-8), marked "lazyneuron.tokenizer.type" = "byte-level" so that lazyneuron
      loads it exactly as from the folder (every byte one token, invalid UTF-8 included).
  tokenizer.model  SentencePiece (LLaMA, Mistral): model "llama", pre "default", its
      pieces, scores and types, add_space_prefix from its normalizer's add_dummy_prefix.
      Read from the protobuf directly (no sentencepiece package). BPE models only: the
      SentencePiece tokenizer lazyneuron runs (and llama.cpp's "llama") merges by score.
  tokenizer.json  a BPE model: GPT-2's byte-level BPE (a ByteLevel pre-tokenizer or
      decoder: OPT, GPT-2) -> model "gpt2", pre "gpt-2", merges; SentencePiece-style BPE
      (byte_fallback, "▁" for spaces: LLaMA's tokenizer.json) -> model "llama" with each
      merged token scored -(its merge's rank), the order its merges apply in.
  vocab.json + merges.txt  GPT-2's byte-level BPE -> model "gpt2".
Special tokens: for "gpt2", bos/eos/pad from config.json and add_bos from
tokenizer_config.json's add_bos_token, as lazyneuron reads the folder (so the GGUF
tokenizes the same); for "llama", tokenizer_config.json's bos/eos/unk/pad token strings,
else config.json's ids, else the SentencePiece trainer's, add_bos true unless
tokenizer_config.json says add_bos_token false (llama.cpp's default). Those ids are
CONTROL tokens (type 3), as are tokenizer.json's special added tokens (non-special ones
USER_DEFINED, 4); "<0xXX>" pieces are BYTE (6), <unk> UNKNOWN (2). A tokenizer smaller
than the model's vocabulary is padded with "[PADi]" tokens of type UNUSED (5), as
llama.cpp's converter does. The chat template: tokenizer_config.json's chat_template (a
string, or a list of named ones: "default" -> tokenizer.chat_template, the others ->
tokenizer.chat_template.NAME), or chat_template.jinja / chat_template.json.
"""
import json
import os
import re
import struct

# llama.cpp's token types (gguf.TokenType / llama_token_type)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPACE = "\u2581"  # SentencePiece's space


class TokenizerError(Exception):
    """A tokenizer file breaks a rule: str() is "path: rule", one line."""

    def __init__(self, path, rule):
        super().__init__(f"{path}: {rule}")
        self.path, self.rule = path, rule


def _typed(name, value):
    from gguf_write import typed
    return typed(name, value)


def bytes_to_unicode():
    """GPT-2's spelling of bytes as printable characters (byte -> character)."""
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) +
            list(range(ord("\u00ae"), ord("\u00ff") + 1)))
    spelled, extra = {}, 0
    for b in range(256):
        if b in keep:
            spelled[b] = chr(b)
        else:
            spelled[b] = chr(256 + extra)
            extra += 1
    return spelled


def _load_json(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise TokenizerError(path, f"not UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise TokenizerError(path, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None


def _object(path, value, what="the file"):
    if not isinstance(value, dict):
        raise TokenizerError(path, f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def _optional_json(folder, name):
    path = os.path.join(folder, name)
    return (path, _object(path, _load_json(path))) if os.path.isfile(path) else (path, {})


def _token_id(path, value, what, n):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
        raise TokenizerError(path, f"{what} must be null or an integer in [0, {n}), not {value!r}")
    return value


def _bool(path, value, what, default):
    if value is None:
        return default
    if not isinstance(value, bool):
        raise TokenizerError(path, f"{what} must be true or false, not {value!r}")
    return value


def _content(value):
    """A special token in tokenizer_config.json: a string or {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


# ------------------------------------------------------------------ shared


class Vocab:
    """What the GGUF gets: the model kind, tokens (str), types, scores, merges, specials."""

    def __init__(self, model, pre, tokens, types, scores=None, merges=None):
        self.model, self.pre, self.tokens, self.types = model, pre, tokens, types
        self.scores, self.merges = scores, merges
        self.bos = self.eos = self.pad = self.unk = None
        self.add_bos = None
        self.add_space_prefix = None
        self.extra = {}  # other metadata (lazyneuron.tokenizer.type)
        self.source = ""

    def mark(self, token_id, kind=CONTROL):
        if token_id is not None and self.types[token_id] in (NORMAL, USER_DEFINED):
            self.types[token_id] = kind

    def pad_to(self, n_vocab, path):
        if len(self.tokens) > n_vocab:
            raise TokenizerError(path, f"the tokenizer has {len(self.tokens)} tokens, the model's "
                                 f"vocabulary {n_vocab} (--no-tokenizer converts without it)")
        for i in range(len(self.tokens), n_vocab):
            self.tokens.append(f"[PAD{i}]")
            self.types.append(UNUSED)
            if self.scores is not None:
                self.scores.append(-1000.0)

    def metadata(self):
        import numpy as np
        meta = {"tokenizer.ggml.model": self.model, "tokenizer.ggml.pre": self.pre,
                "tokenizer.ggml.tokens": _typed("str", self.tokens),
                "tokenizer.ggml.token_type": np.array(self.types, dtype=np.int32)}
        if self.scores is not None:
            meta["tokenizer.ggml.scores"] = np.array(self.scores, dtype=np.float32)
        if self.merges is not None:
            meta["tokenizer.ggml.merges"] = _typed("str", self.merges)
        for key, value in (("bos", self.bos), ("eos", self.eos), ("unknown", self.unk),
                           ("padding", self.pad)):
            if value is not None:
                meta[f"tokenizer.ggml.{key}_token_id"] = _typed("u32", value)
        if self.add_bos is not None:
            meta["tokenizer.ggml.add_bos_token"] = bool(self.add_bos)
        if self.add_space_prefix is not None:
            meta["tokenizer.ggml.add_space_prefix"] = bool(self.add_space_prefix)
        meta.update(self.extra)
        return meta


def _gpt2_specials(folder, vocab, config):
    """bos/eos/pad from config.json, add_bos from tokenizer_config.json: lazyneuron's rules
    for a folder's GPT-2 tokenizer (lib/text/load.c), so both tokenize alike."""
    path = os.path.join(folder, "config.json")
    n = len(vocab.tokens)
    vocab.bos = _token_id(path, config.get("bos_token_id"), "bos_token_id", n)
    vocab.eos = _token_id(path, config.get("eos_token_id"), "eos_token_id", n)
    vocab.pad = _token_id(path, config.get("pad_token_id"), "pad_token_id", n)
    for token_id in (vocab.bos, vocab.eos, vocab.pad):
        vocab.mark(token_id)
    tc_path, tc = _optional_json(folder, "tokenizer_config.json")
    vocab.add_bos = _bool(tc_path, tc.get("add_bos_token"), "add_bos_token", False)


# -------------------------------------------------------------- byte-level


def byte_level(folder, path):
    desc = _object(path, _load_json(path))
    if desc.get("type") != "byte-level":
        raise TokenizerError(path, f"type {desc.get('type')!r}: lazyneuron's description file "
                             "knows \"byte-level\"")
    spelled = bytes_to_unicode()
    vocab = Vocab("gpt2", "gpt-2", [spelled[b] for b in range(256)], [NORMAL] * 256, merges=[])
    vocab.bos = _token_id(path, desc.get("bos_token_id"), "bos_token_id", 256)
    vocab.eos = _token_id(path, desc.get("eos_token_id"), "eos_token_id", 256)
    vocab.add_bos = _bool(path, desc.get("add_bos"), "add_bos", False)
    vocab.mark(vocab.bos)
    vocab.mark(vocab.eos)
    vocab.extra["lazyneuron.tokenizer.type"] = "byte-level"
    return vocab


# -------------------------------------------------------------- GPT-2 BPE


def _tokens_by_id(path, mapping, added=()):
    """A list indexed by id from {token: id} (+ added tokens (id, content)): ids 0..n-1."""
    by_id = {}
    for token, token_id in list(mapping.items()) + [(c, i) for i, c in added]:
        if isinstance(token_id, bool) or not isinstance(token_id, int) or token_id < 0:
            raise TokenizerError(path, f"token {token!r} has id {token_id!r}")
        if by_id.get(token_id, token) != token:
            raise TokenizerError(path, f"id {token_id} is both {by_id[token_id]!r} and {token!r}")
        by_id[token_id] = token
    n = max(by_id) + 1 if by_id else 0
    missing = [i for i in range(n) if i not in by_id]
    if not by_id or missing:
        raise TokenizerError(path, f"the ids are not 0..{n - 1}: {missing[:3]} missing"
                             if by_id else "no tokens")
    return [by_id[i] for i in range(n)]


def _merge_strings(path, merges):
    out = []
    for i, m in enumerate(merges):
        if isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) for x in m):
            m = f"{m[0]} {m[1]}"
        if not isinstance(m, str) or m.count(" ") != 1:
            raise TokenizerError(path, f"merge {i} {m!r} is not two tokens")
        out.append(m)
    return out


def vocab_merges(folder, config):
    vpath, mpath = os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")
    mapping = _object(vpath, _load_json(vpath))
    tokens = _tokens_by_id(vpath, mapping)
    try:
        with open(mpath, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f]
    except UnicodeDecodeError as e:
        raise TokenizerError(mpath, f"not UTF-8 ({e.reason})") from None
    merges = _merge_strings(mpath, [line for line in lines if line and not line.startswith("#version")])
    vocab = Vocab("gpt2", "gpt-2", tokens, [NORMAL] * len(tokens), merges=merges)
    _gpt2_specials(folder, vocab, config)
    vocab.source = "vocab.json + merges.txt"
    return vocab


# -------------------------------------------------------------- tokenizer.json


def _has_type(node, name):
    """Whether a tokenizer.json component (or a Sequence of them) is of this type."""
    if not isinstance(node, dict):
        return False
    if node.get("type") == name:
        return True
    parts = node.get("pretokenizers") or node.get("normalizers") or node.get("decoders") or []
    return any(_has_type(p, name) for p in parts if isinstance(p, dict))


def _added_tokens(path, tj):
    added = tj.get("added_tokens") or []
    if not isinstance(added, list):
        raise TokenizerError(path, "added_tokens must be a list")
    out = []
    for a in added:
        if not isinstance(a, dict) or not isinstance(a.get("id"), int) or not isinstance(a.get("content"), str):
            raise TokenizerError(path, f"an added token without an integer id and a content: {a!r}")
        out.append((a["id"], a["content"], bool(a.get("special"))))
    return out


def tokenizer_json(folder, config, path):
    tj = _object(path, _load_json(path))
    model = _object(path, tj.get("model"), "\"model\"")
    if model.get("type") != "BPE":
        raise TokenizerError(path, f"model type {model.get('type')!r}: lzn-convert reads BPE "
                             "tokenizers (GPT-2's and SentencePiece's)")
    mapping = _object(path, model.get("vocab"), "model.vocab")
    added = _added_tokens(path, tj)
    tokens = _tokens_by_id(path, mapping, [(i, c) for i, c, _ in added])
    merges = _merge_strings(path, model.get("merges") or [])
    byte_level_bpe = _has_type(tj.get("pre_tokenizer"), "ByteLevel") or _has_type(tj.get("decoder"), "ByteLevel")
    types = [NORMAL] * len(tokens)
    for i, _, special in added:
        types[i] = CONTROL if special else USER_DEFINED
    if byte_level_bpe:
        if (tj.get("pre_tokenizer") or {}).get("type") not in ("ByteLevel", None):
            raise TokenizerError(path, f"pre-tokenizer {tj['pre_tokenizer'].get('type')!r}: lazyneuron "
                                 "splits text as GPT-2's ByteLevel pre-tokenizer does only")
        vocab = Vocab("gpt2", "gpt-2", tokens, types, merges=merges)
        _gpt2_specials(folder, vocab, config)
    elif model.get("byte_fallback"):
        # A token no merge makes is never merged into (HF's BPE) but llama.cpp's SPM
        # would merge into any token: give those the lowest score.
        unmerged = -1e9
        vocab = Vocab("llama", "default", tokens, types, scores=[unmerged] * len(tokens))
        index = {t: i for i, t in enumerate(tokens)}
        for rank, m in enumerate(merges):
            merged = index.get(m.replace(" ", ""))
            if merged is not None and vocab.scores[merged] == unmerged:
                vocab.scores[merged] = -float(rank + 1)
        for i, t in enumerate(tokens):
            if re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", t):
                types[i] = BYTE
        unk = model.get("unk_token")
        if isinstance(unk, str) and unk in index:
            vocab.unk = index[unk]
            types[vocab.unk] = UNKNOWN
        vocab.add_space_prefix = _space_prefix(tj)
        _llama_specials(folder, vocab, config, None)
    else:
        raise TokenizerError(path, "a BPE model that is neither GPT-2's byte-level BPE (ByteLevel "
                             "pre-tokenizer) nor SentencePiece's (byte_fallback)")
    vocab.source = "tokenizer.json"
    return vocab


def _space_prefix(tj):
    """Whether text gets a "▁" in front: a Metaspace pre-tokenizer that prepends, or a
    normalizer that prepends "▁" (LLaMA 2's tokenizer.json)."""
    def walk(node):
        if not isinstance(node, dict):
            return False
        if node.get("type") == "Metaspace":
            return node.get("prepend_scheme", "always") in ("always", "first") and node.get("add_prefix_space", True)
        if node.get("type") == "Prepend":
            return node.get("prepend") == SPACE
        parts = node.get("pretokenizers") or node.get("normalizers") or []
        return any(walk(p) for p in parts)
    return walk(tj.get("pre_tokenizer")) or walk(tj.get("normalizer"))


def _llama_specials(folder, vocab, config, trainer):
    """llama.cpp's special ids: tokenizer_config.json's token strings, else config.json's
    ids, else the SentencePiece trainer's; add_bos true unless it says otherwise."""
    tc_path, tc = _optional_json(folder, "tokenizer_config.json")
    index = {t: i for i, t in enumerate(vocab.tokens)}
    cfg_path = os.path.join(folder, "config.json")
    n = len(vocab.tokens)
    for name, attr in (("bos", "bos"), ("eos", "eos"), ("unk", "unk"), ("pad", "pad")):
        text = _content(tc.get(f"{name}_token"))
        token_id = index.get(text) if text is not None else None
        if token_id is None and attr != "unk":
            token_id = _token_id(cfg_path, config.get(f"{name}_token_id"), f"{name}_token_id", n)
        if token_id is None and trainer is not None:
            tid = trainer.get(f"{name}_id")
            token_id = tid if tid is not None and 0 <= tid < n else None
        if token_id is not None:
            setattr(vocab, attr, token_id)
            if attr != "unk":
                vocab.mark(token_id)
    vocab.add_bos = _bool(tc_path, tc.get("add_bos_token"), "add_bos_token", True)


# ---------------------------------------------------------- SentencePiece


def _varint(data, pos):
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("a truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _fields(data):
    """(field number, wire type, value) of a protobuf message: ints for varints and
    fixed widths, bytes for length-delimited fields."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            if pos + 8 > len(data):
                raise ValueError("a truncated 64-bit field")
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(data, pos)
            if pos + n > len(data):
                raise ValueError(f"field {field} runs past the end")
            value, pos = data[pos:pos + n], pos + n
        elif wire == 5:
            if pos + 4 > len(data):
                raise ValueError("a truncated 32-bit field")
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire} of field {field}")
        yield field, wire, value


def read_sentencepiece(path):
    """{"pieces": [(piece, score, type)], "trainer": {...}, "add_dummy_prefix": bool} of a
    SentencePiece ModelProto (sentencepiece_model.proto: pieces = 1 {piece = 1, score = 2,
    type = 3}, trainer_spec = 2 {model_type = 3, unk_id = 40, bos_id = 41, eos_id = 42,
    pad_id = 43}, normalizer_spec = 3 {add_dummy_prefix = 3})."""
    with open(path, "rb") as f:
        data = f.read()
    pieces, trainer, add_dummy_prefix = [], {"model_type": 1}, True
    ids = {40: "unk_id", 41: "bos_id", 42: "eos_id", 43: "pad_id"}
    try:
        for field, wire, value in _fields(data):
            if field == 1 and wire == 2:
                piece, score, kind = None, 0.0, NORMAL
                for f2, w2, v2 in _fields(value):
                    if f2 == 1 and w2 == 2:
                        piece = v2.decode("utf-8")
                    elif f2 == 2 and w2 == 5:
                        (score,) = struct.unpack("<f", v2)
                    elif f2 == 3 and w2 == 0:
                        kind = v2
                if piece is None:
                    raise ValueError(f"piece {len(pieces)} has no text")
                pieces.append((piece, score, kind))
            elif field == 2 and wire == 2:
                for f2, w2, v2 in _fields(value):
                    if f2 == 3 and w2 == 0:
                        trainer["model_type"] = v2
                    elif f2 in ids and w2 == 0:
                        trainer[ids[f2]] = v2 - (1 << 64) if v2 >= 1 << 63 else v2  # int32 -1
            elif field == 3 and wire == 2:
                for f2, w2, v2 in _fields(value):
                    if f2 == 3 and w2 == 0:
                        add_dummy_prefix = bool(v2)
    except (ValueError, UnicodeDecodeError) as e:
        raise TokenizerError(path, f"not a SentencePiece model: {e}") from None
    if not pieces:
        raise TokenizerError(path, "not a SentencePiece model: no pieces")
    return {"pieces": pieces, "trainer": trainer, "add_dummy_prefix": add_dummy_prefix}


def sentencepiece(folder, config, path):
    sp = read_sentencepiece(path)
    if sp["trainer"]["model_type"] != 2:
        kinds = {1: "unigram", 3: "word", 4: "char"}
        raise TokenizerError(path, f"a SentencePiece {kinds.get(sp['trainer']['model_type'], '?')} "
                             "model: lazyneuron runs SentencePiece BPE (--no-tokenizer converts "
                             "without it)")
    tokens = [p for p, _, _ in sp["pieces"]]
    types = [k if k in (NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE) else NORMAL
             for _, _, k in sp["pieces"]]
    vocab = Vocab("llama", "default", tokens, types, scores=[s for _, s, _ in sp["pieces"]])
    added_path = os.path.join(folder, "added_tokens.json")
    if os.path.isfile(added_path):
        added = _object(added_path, _load_json(added_path))
        for text, token_id in sorted(added.items(), key=lambda kv: kv[1]):
            if token_id != len(vocab.tokens):
                raise TokenizerError(added_path, f"token {text!r} has id {token_id}, expected "
                                     f"{len(vocab.tokens)} (the next one)")
            vocab.tokens.append(text)
            vocab.types.append(USER_DEFINED)
            vocab.scores.append(-1000.0)
    vocab.add_space_prefix = sp["add_dummy_prefix"]
    unk = sp["trainer"].get("unk_id", 0)
    vocab.unk = unk if 0 <= unk < len(tokens) else None
    _llama_specials(folder, vocab, config, sp["trainer"])
    vocab.source = "tokenizer.model"
    return vocab


# ------------------------------------------------------------------ main


def chat_templates(folder):
    """{gguf key: template} from tokenizer_config.json, chat_template.jinja or .json."""
    tc_path, tc = _optional_json(folder, "tokenizer_config.json")
    found = tc.get("chat_template")
    jinja = os.path.join(folder, "chat_template.jinja")
    if found is None and os.path.isfile(jinja):
        with open(jinja, encoding="utf-8") as f:
            found, tc_path = f.read(), jinja
    ct_path = os.path.join(folder, "chat_template.json")
    if found is None and os.path.isfile(ct_path):
        found, tc_path = _object(ct_path, _load_json(ct_path)).get("chat_template"), ct_path
    if found is None:
        return {}
    if isinstance(found, str):
        return {"tokenizer.chat_template": found}
    if isinstance(found, list):
        out = {}
        for entry in found:
            if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and
                    isinstance(entry.get("template"), str)):
                raise TokenizerError(tc_path, "chat_template list entries must be {\"name\": ..., "
                                     "\"template\": ...}")
            name = entry["name"]
            out["tokenizer.chat_template" if name == "default" else
                f"tokenizer.chat_template.{name}"] = entry["template"]
        return out
    raise TokenizerError(tc_path, "chat_template must be a string or a list of named templates")


def find_vocab(folder, config, family):
    """The folder's tokenizer as a Vocab, or None if it has none."""
    def there(name):
        return os.path.isfile(os.path.join(folder, name))
    if there("lazyneuron_tokenizer.json"):
        vocab = byte_level(folder, os.path.join(folder, "lazyneuron_tokenizer.json"))
        vocab.source = "lazyneuron_tokenizer.json"
        return vocab
    if family == "llama" and there("tokenizer.model"):
        return sentencepiece(folder, config, os.path.join(folder, "tokenizer.model"))
    if there("tokenizer.json"):
        return tokenizer_json(folder, config, os.path.join(folder, "tokenizer.json"))
    if there("vocab.json") and there("merges.txt"):
        return vocab_merges(folder, config)
    if there("tokenizer.model"):
        return sentencepiece(folder, config, os.path.join(folder, "tokenizer.model"))
    return None


def tokenizer_metadata(folder, config, family, n_vocab):
    """(GGUF metadata, one-line summary, {key: chat template}) of the folder's tokenizer
    and chat templates; n_vocab: the model's vocabulary (the tokenizer is padded to it)."""
    vocab = find_vocab(folder, config, family)
    meta = {}
    if vocab is None:
        summary = "none (no lazyneuron_tokenizer.json, tokenizer.model, tokenizer.json or vocab.json + merges.txt)"
    else:
        n_own = len(vocab.tokens)
        vocab.pad_to(n_vocab, os.path.join(folder, vocab.source.split(" ")[0]))
        meta = vocab.metadata()
        kind = vocab.extra.get("lazyneuron.tokenizer.type", vocab.model)
        specials = ", ".join(f"{k} {v}" for k, v in (("bos", vocab.bos), ("eos", vocab.eos))
                             if v is not None)
        summary = (f"{kind} from {vocab.source}, {n_own} tokens"
                   f"{f' (+{n_vocab - n_own} padding)' if n_vocab > n_own else ''}"
                   f"{', ' + specials if specials else ''}, add_bos {str(bool(vocab.add_bos)).lower()}")
    templates = chat_templates(folder)
    meta.update(templates)
    return meta, summary, templates
