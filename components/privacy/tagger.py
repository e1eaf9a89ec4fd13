"""A learned recogniser for names and addresses (zh + en): a small character-level tagger.

Rules find structured personal data (IDs with check digits, cards, phones) and names after a cue;
a name or an address said without a cue ("hi, Sara Schwarz here", "寄到杭州市西湖区文三路 90
号") has no shape a pattern could rely on. This tagger reads it from context:

* every character is a position: its (lower-cased, folded) identity, its class (upper, lower,
  digit, CJK, space, punctuation), the shape of the word it belongs to (and whether that word
  starts a sentence), where it sits in that word, a hashed embedding of that word (Latin) or of
  the character bigrams around it (CJK), and for Chinese the word jieba's dictionary cuts around
  it (begin/middle/end/single) and that word's part of speech (``nr`` person, ``ns`` place, …;
  dictionary only, no HMM: 1–2 ms for 500 characters);
* a stack of dilated residual 1-D convolutions (receptive field of about 30 characters each
  side) and a bidirectional LSTM over the whole text give every position its context — not a
  transformer, because the guard must stay within 15 ms for a 500-character message on 2 CPU
  cores, where a 6-layer transformer needs several times that for 500 Chinese characters;
* a BIO head (``O``, ``B-``/``I-`` of ``NAME`` and ``ADDRESS``) tags *tokens*: a Latin/digit word
  is one token (read at its first character), a CJK character or a punctuation mark is one,
  whitespace is none. Tags are decoded by a constrained Viterbi pass (no ``I-`` after ``O`` or
  after another label) and turned into exact character spans by the same machinery as the NLU
  component's entities (:func:`components.bio.decode_tags`).

The model is small (a few MB in float16) and ships as a file in ``artifacts/`` with its model
card and checksum; :mod:`training.privacy.tagger_training` reproduces it. Engine only: no
``rasa``; torch is imported on use.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.errors import ConfigError, ModelNotFoundError

logger = logging.getLogger(__name__)

#: The committed model, its checksum and its model card.
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
MODEL_FILE = ARTIFACTS / "pii-tagger.safetensors"
CHECKSUM_FILE = ARTIFACTS / "pii-tagger.sha256"
REBUILD = "python -m training tagger"
#: What the tagger finds (the recognisers' type names).
LABELS = ("NAME", "ADDRESS")

_PAD, _UNK = 0, 1
# character classes
_CLASSES = ("pad", "space", "newline", "upper", "lower", "digit", "cjk", "punct", "other")
# word shapes (of the Latin/digit word a character belongs to)
_SHAPES = ("none", "title", "upper", "lower", "mixed", "digits", "alnum")
# position in the word
_POSITIONS = ("none", "single", "begin", "inside", "end")
# jieba's part-of-speech tags (index + 2; 1: any other tag, 0: none)
_ZH_POS = (
    "n nr nr1 nr2 nrj nrf nrt ns nsf nt nz nl ng t s f v vd vn vf vx vi vl vg a ad an ag al b "
    "bl z r rr rz rzt rzs rzv ry ryt rys ryv rg m mq q qv qt d p pba pbei c cc u uzhe ule "
    "uguo ude1 ude2 ude3 usuo udeng uyy udh uls uzhi ulian uj ul uz ug uv ud e y o h k x xx "
    "xu w eng i j l g zg df tg vq yg mg dg"
).split()
_ZH_POS_INDEX = {tag: i + 2 for i, tag in enumerate(_ZH_POS)}
N_FEATURES = 8


def _jieba_features(text: str) -> tuple[list[int], list[int]]:
    """Per character: jieba's part of speech of its word, and its place in the word."""
    import jieba
    import jieba.posseg

    pos = [0] * len(text)
    seg = [0] * len(text)
    if not any("\u3400" <= ch <= "\u9fff" for ch in text):
        return pos, seg
    jieba.setLogLevel(logging.WARNING)
    at = 0
    for pair in jieba.posseg.cut(text, HMM=False):
        word, flag = pair.word, pair.flag
        size = len(word)
        if any("\u3400" <= ch <= "\u9fff" for ch in word):
            tag = _ZH_POS_INDEX.get(flag, 1)
            for k in range(size):
                pos[at + k] = tag
                seg[at + k] = 4 if size == 1 else 1 if k == 0 else 3 if k == size - 1 else 2
        at += size
    return pos, seg


@dataclass
class TaggerConfig:
    """Sizes of the tagger (saved with the weights).

    Attributes:
        char_dim: Width of the character embedding.
        hash_dim: Width of the hashed word / bigram embedding.
        hash_buckets: Rows of the hashed embedding table.
        width: Channels of the convolution stack.
        dilations: One residual convolution (kernel 3) per entry, with this dilation.
        lstm: A bidirectional LSTM (``width / 2`` per direction) after the convolutions.
        dropout: Dropout between blocks (training only).
        max_chars: Longest text tagged in one piece; longer texts are tagged in overlapping
            windows.
        threshold: Least mean tag probability for a span to be reported.
        chars: The character vocabulary (index + 2 = id; 0 is padding, 1 unknown).
        labels: Span labels of the BIO head.
    """

    char_dim: int = 48
    hash_dim: int = 32
    hash_buckets: int = 1 << 16
    width: int = 128
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    lstm: bool = True
    dropout: float = 0.1
    max_chars: int = 512
    threshold: float = 0.5
    chars: list[str] = field(default_factory=list)
    labels: tuple[str, ...] = LABELS

    def __post_init__(self) -> None:
        """Check the sizes (naming a bad value) and make the sequences tuples."""
        for key in ("char_dim", "hash_dim", "hash_buckets", "width", "max_chars"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(key, value, "a positive integer", component="PIITagger")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError("threshold", self.threshold, "a number in [0, 1]")
        self.dilations = tuple(self.dilations)
        self.labels = tuple(self.labels)

    @property
    def tags(self) -> list[str]:
        """The BIO tag vocabulary of the head."""
        from components.bio import bio_tags

        return bio_tags(list(self.labels))


def _char_class(ch: str) -> int:
    if ch == "\n":
        return 2
    if ch.isspace():
        return 1
    if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff":
        return 6
    if ch.isdigit():
        return 5
    if ch.isalpha():
        return 3 if ch.isupper() else 4
    cat = unicodedata.category(ch)
    return 7 if cat[0] in "PS" else 8


def _shape(word: str) -> int:
    if word.isdigit():
        return 5
    if any(c.isdigit() for c in word):
        return 6
    if word.isupper() and len(word) > 1:
        return 2
    if word[0].isupper() and (len(word) == 1 or word[1:].islower()):
        return 1
    if word.islower():
        return 3
    return 4


def _bucket(key: str, buckets: int) -> int:
    return zlib.crc32(key.encode("utf-8")) % buckets


def featurize(text: str, config: TaggerConfig, index: dict[str, int]) -> list[list[int]]:
    """Per-character feature ids of ``text``: char, class, shape, position, hash buckets, jieba.

    The last two are jieba's part of speech and word position (Chinese text only).

    Args:
        text: The (folded) text.
        config: The tagger's sizes.
        index: Character → id.

    Returns:
        :data:`N_FEATURES` lists of ids, one entry per character.
    """
    n = len(text)
    chars = [index.get(ch.lower(), _UNK) for ch in text]
    classes = [_char_class(ch) for ch in text]
    shapes = [0] * n
    positions = [0] * n
    hash_a = [0] * n
    hash_b = [0] * n
    buckets = config.hash_buckets
    i = 0
    while i < n:
        cls = classes[i]
        if cls in (3, 4, 5):  # a Latin/digit word (letters, digits, apostrophes, hyphens inside)
            j = i + 1
            while j < n and (
                classes[j] in (3, 4, 5)
                or (text[j] in "'-." and j + 1 < n and classes[j + 1] in (3, 4, 5))
            ):
                j += 1
            word = text[i:j]
            shape = _shape(word.replace("'", "").replace("-", "").replace(".", "") or word)
            before = text[:i].rstrip()
            if not before or before[-1] in ".!?:\n。！？：":  # starts a sentence or a line
                shape += len(_SHAPES)
            key = _bucket("w:" + word.lower(), buckets)
            for k in range(i, j):
                shapes[k] = shape
                positions[k] = 1 if j - i == 1 else 2 if k == i else 4 if k == j - 1 else 3
                hash_a[k] = key
                hash_b[k] = _bucket("p:" + text[i - 1 : i].lower(), buckets) if i else 0
            i = j
        elif cls == 6:
            left = text[i - 1] if i else "^"
            right = text[i + 1] if i + 1 < n else "$"
            hash_a[i] = _bucket("l:" + left + text[i], buckets)
            hash_b[i] = _bucket("r:" + text[i] + right, buckets)
            positions[i] = 1
            i += 1
        else:
            i += 1
    return [chars, classes, shapes, positions, hash_a, hash_b, *_jieba_features(text)]


def token_offsets(text: str) -> list[tuple[int, int]]:
    """One ``(start, end)`` per character: the token it heads, or ``(i, i)`` (no token).

    A Latin/digit word (letters, digits, and ``'``, ``-``, ``.`` between them, as in
    :func:`featurize`) is one token read at its first character; every other character that is
    not whitespace is a token of its own.
    """
    out: list[tuple[int, int]] = []
    n = len(text)
    i = 0
    while i < n:
        cls = _char_class(text[i])
        if cls in (3, 4, 5):
            j = i + 1
            while j < n and (
                _char_class(text[j]) in (3, 4, 5)
                or (text[j] in "'-." and j + 1 < n and _char_class(text[j + 1]) in (3, 4, 5))
            ):
                j += 1
            out.append((i, j))
            out += [(k, k) for k in range(i + 1, j)]
            i = j
        else:
            out.append((i, i) if cls in (1, 2) else (i, i + 1))
            i += 1
    return out


def viterbi(log_probs, tags: Sequence[str]) -> list[int]:  # noqa: ANN001 - a numpy array
    """The best tag path under BIO constraints (``I-x`` only after ``B-x`` or ``I-x``)."""
    import numpy as np

    size = len(tags)
    allowed = np.zeros((size, size))
    for a, before in enumerate(tags):
        for b, after in enumerate(tags):
            if after.startswith("I-") and before[2:] != after[2:]:
                allowed[a, b] = -np.inf
    start = np.array([-np.inf if t.startswith("I-") else 0.0 for t in tags])
    score = log_probs[0] + start
    back = np.zeros((len(log_probs), size), dtype=np.int64)
    for t in range(1, len(log_probs)):
        candidates = score[:, None] + allowed
        back[t] = candidates.argmax(0)
        score = candidates.max(0) + log_probs[t]
    path = [int(score.argmax())]
    for t in range(len(log_probs) - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]


_IDENTIFIER = re.compile(r"_|[a-z0-9]\.[a-z]")


def _not_prose(text: str, start: int, end: int) -> bool:
    """Whether a span is identifier syntax or glued to it (log lines, payloads).

    ``processor.message.received``, ``turn_failed``, ``key=value`` and paths are not something a
    person wrote.
    """
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return (
        before in "_=/\\@#$<"
        or after in "_=/\\@(>"
        or _IDENTIFIER.search(text[start:end]) is not None
    )


def _common_words(value: str) -> bool:
    """Whether every word of ``value`` is a common English word ("Sorry", "Thanks a lot")."""
    from components.privacy.recognisers import common_english_word

    words = [w for w in value.replace("\n", " ").split() if any(c.isalpha() for c in w)]
    return bool(words) and all(common_english_word(w) for w in words)


def _build_module(config: TaggerConfig):  # noqa: ANN202 - torch is imported on use
    import torch
    from torch import nn

    class _Block(nn.Module):
        def __init__(self, width: int, dilation: int, dropout: float) -> None:
            super().__init__()
            self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
            self.norm = nn.LayerNorm(width)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.conv((x * mask).transpose(1, 2))).transpose(1, 2)
            return self.norm(x + self.dropout(y))

    class _Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.chars = nn.Embedding(len(config.chars) + 2, config.char_dim, padding_idx=_PAD)
            self.classes = nn.Embedding(len(_CLASSES), 8)
            self.shapes = nn.Embedding(2 * len(_SHAPES), 8)
            self.positions = nn.Embedding(len(_POSITIONS), 4)
            self.hashed = nn.Embedding(config.hash_buckets, config.hash_dim)
            self.zh_pos = nn.Embedding(len(_ZH_POS) + 2, 16)
            self.zh_seg = nn.Embedding(5, 4)
            inputs = config.char_dim + 8 + 8 + 4 + config.hash_dim + 16 + 4
            self.project = nn.Linear(inputs, config.width)
            self.blocks = nn.ModuleList(
                _Block(config.width, d, config.dropout) for d in config.dilations
            )
            self.lstm = (
                nn.LSTM(config.width, config.width // 2, batch_first=True, bidirectional=True)
                if config.lstm
                else None
            )
            self.head = nn.Linear(config.width, len(config.tags))

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            """Tag logits ``(batch, chars, tags)`` from feature ids ``(batch, 8, chars)``."""
            chars, classes, shapes, positions, hash_a, hash_b, zh_pos, zh_seg = features.unbind(1)
            x = torch.cat(
                [
                    self.chars(chars),
                    self.classes(classes),
                    self.shapes(shapes),
                    self.positions(positions),
                    self.hashed(hash_a) + self.hashed(hash_b),
                    self.zh_pos(zh_pos),
                    self.zh_seg(zh_seg),
                ],
                dim=-1,
            )
            mask = (classes != 0).unsqueeze(-1).to(x.dtype)
            x = torch.relu(self.project(x))
            for block in self.blocks:
                x = block(x, mask)
            if self.lstm is not None:  # padding never reaches the backward direction
                lengths = (classes != 0).sum(1).clamp(min=1)
                if self.training:
                    packed = nn.utils.rnn.pack_padded_sequence(
                        x, lengths.cpu(), batch_first=True, enforce_sorted=False
                    )
                    states, _ = nn.utils.rnn.pad_packed_sequence(
                        self.lstm(packed)[0], batch_first=True, total_length=x.shape[1]
                    )
                else:  # one text at a time: CPU LSTMs are ~9x slower on packed input
                    states = torch.zeros_like(x)
                    for i, size in enumerate(lengths.tolist()):
                        states[i, :size] = self.lstm(x[i : i + 1, :size])[0][0]
                x = x + states
            return self.head(x)

    return _Tagger()


class PIITagger:
    """Finds names and addresses in text (see the module docstring).

    Args:
        config: Sizes, vocabulary and decision threshold.
        module: The torch module (built from ``config`` when not given: untrained).
    """

    def __init__(self, config: TaggerConfig, module: Any = None) -> None:
        self.config = config
        self.index = {ch: i + 2 for i, ch in enumerate(config.chars)}
        self.module = module if module is not None else _build_module(config)
        self.module.eval()

    # ------------------------------------------------------------------ tensors
    def batch(self, texts: Sequence[str]):  # noqa: ANN201 - a torch tensor
        """Feature ids of ``texts``, padded: ``(batch, N_FEATURES, longest)``."""
        import torch

        from components.text import fold_for_model

        feats = [featurize(fold_for_model(t), self.config, self.index) for t in texts]
        longest = max((len(f[0]) for f in feats), default=1) or 1
        out = np.zeros((len(feats), N_FEATURES, longest), dtype=np.int64)
        for i, f in enumerate(feats):
            if f[0]:
                out[i, :, : len(f[0])] = f
        return torch.from_numpy(out)

    @staticmethod
    def offsets(text: str) -> list[tuple[int, int]]:
        """One ``(start, end)`` per character: its token, or none (see :func:`token_offsets`)."""
        return token_offsets(text)

    # ------------------------------------------------------------------ inference
    def find(self, texts: Sequence[str]) -> list[list[tuple[str, int, int, float]]]:
        """Names and addresses in each text: ``(label, start, end, confidence)``.

        Texts longer than ``max_chars`` are tagged in windows that overlap by a quarter, each
        character keeping the tags of the window where it is farthest from an edge.

        Args:
            texts: The messages.

        Returns:
            Spans per text, in order, with offsets into the text as given.
        """
        import torch

        pieces: list[tuple[int, int, int]] = []  # (text index, start, end)
        size = self.config.max_chars
        step = max(1, size * 3 // 4)
        for t, text in enumerate(texts):
            if len(text) <= size:
                pieces.append((t, 0, len(text)))
                continue
            start = 0
            while True:
                end = min(len(text), start + size)
                pieces.append((t, start, end))
                if end == len(text):
                    break
                start += step
        probs_per_text: list[Any] = [None] * len(texts)
        tags = self.config.tags
        with torch.inference_mode():
            for b in range(0, len(pieces), 32):
                chunk = pieces[b : b + 32]
                feats = self.batch([texts[t][s:e] for t, s, e in chunk])
                probs = torch.softmax(self.module(feats).float(), dim=-1)
                for (t, s, e), p in zip(chunk, probs, strict=True):
                    p = p[: e - s]
                    if probs_per_text[t] is None:
                        probs_per_text[t] = torch.zeros(len(texts[t]), len(tags))
                        probs_per_text[t][:, 0] = 1.0
                        if len(texts[t]) <= size:
                            probs_per_text[t] = p
                            continue
                    # keep the middle of each window: a quarter overlap, halves to each side
                    lo = 0 if s == 0 else size // 8
                    hi = e - s if e == len(texts[t]) else e - s - size // 8
                    probs_per_text[t][s + lo : s + hi] = p[lo:hi]
        return [self._decode(t, p) for t, p in zip(texts, probs_per_text, strict=True)]

    def _decode(self, text: str, probs: Any) -> list[tuple[str, int, int, float]]:  # noqa: ANN401
        """Spans of one text from its per-character tag probabilities."""
        if probs is None or not text:
            return []
        offsets = self.offsets(text)
        heads = [i for i, (start, end) in enumerate(offsets) if end > start]
        token_probs = probs[heads].numpy()
        best = token_probs.argmax(-1)
        labelled = [k for k, tag in enumerate(best.tolist()) if tag != 0]
        if not labelled:
            return []
        tags = self.config.tags
        chosen = best.tolist()
        # the most probable tags are the best path when they break no BIO constraint; where
        # they do, the constrained path is found around the first to the last broken place
        broken = [
            k
            for k in labelled
            if tags[chosen[k]].startswith("I-")
            and (k == 0 or tags[chosen[k - 1]][2:] != tags[chosen[k]][2:])
        ]
        if broken:
            lo, hi = max(0, broken[0] - 4), min(len(heads), broken[-1] + 4)
            while lo > 0 and chosen[lo] != 0:  # whole runs only: start where a tag is O
                lo -= 1
            while hi < len(heads) and tags[chosen[hi]].startswith("I-"):
                hi += 1
            chosen[lo:hi] = viterbi(np.log(token_probs[lo:hi] + 1e-9), tags)
        names = ["O"] * len(text)
        confidences = [1.0] * len(text)
        for k, i in enumerate(heads):
            names[i] = tags[chosen[k]]
            confidences[i] = float(token_probs[k, chosen[k]])
        from components.bio import decode_tags

        spans = []
        for e in decode_tags(text, offsets, names, confidences):
            if e["entity"] == "NAME" and e["value"].endswith(("'s", "’s")):  # Sara's → Sara
                e["end"] -= 2
            value = text[e["start"] : e["end"]]
            if e["confidence_entity"] < self.config.threshold or not value.strip():
                continue
            if len(value) == 1 and not value.isascii():  # a lone CJK character is no name
                continue
            if _not_prose(text, e["start"], e["end"]) or (
                e["entity"] == "NAME" and (_common_words(value) or any(c.isdigit() for c in value))
            ):
                continue
            spans.append((e["entity"], e["start"], e["end"], float(e["confidence_entity"])))
        return spans

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path) -> None:
        """Write the weights (float16) and the config into one safetensors file."""
        from safetensors.torch import save_file

        state = {k: v.detach().half().contiguous() for k, v in self.module.state_dict().items()}
        config = asdict(self.config)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(state, str(path), metadata={"config": json.dumps(config, ensure_ascii=False)})

    @classmethod
    def load(cls, path: Path = MODEL_FILE, checksum_file: Path | None = None) -> PIITagger:
        """Read a file written by :meth:`save` (checked against ``checksum_file`` if given).

        Raises:
            ModelNotFoundError: when the file is missing, does not match its checksum, or does
                not fit the model it describes.
        """
        from safetensors import safe_open

        if not path.is_file():
            raise ModelNotFoundError(
                f"no PII tagger at {path}",
                hint=f"restore it from git or rebuild it: {REBUILD}",
                path=str(path),
            )
        if checksum_file is not None:
            from components.checksums import expected_checksum, sha256

            if sha256(path) != expected_checksum(checksum_file):
                raise ModelNotFoundError(
                    f"{path.name} does not match {checksum_file.name}",
                    hint="restore both from git, or rebuild them (see the model card)",
                    path=str(path),
                )
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            state = {k: handle.get_tensor(k).float() for k in handle.keys()}  # noqa: SIM118
        try:
            config = TaggerConfig(**json.loads(meta["config"]))
            module = _build_module(config)
            module.load_state_dict(state)
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise ModelNotFoundError(
                f"{path.name} does not describe a PII tagger ({type(exc).__name__})",
                hint=f"rebuild it: {REBUILD}",
                path=str(path),
            ) from exc
        return cls(config, module)


def default_tagger() -> PIITagger:
    """The committed tagger, checked against its committed checksum."""
    tagger = PIITagger.load(MODEL_FILE, CHECKSUM_FILE)
    logger.info("pii_tagger.loaded chars=%d", len(tagger.config.chars))
    return tagger
