"""BIO tags for entity spans: character spans to per-token tags and back.

Tokens are given as character offsets ``(start, end)`` (a fast tokenizer's offset mapping,
trimmed to the characters a token covers); special and padding tokens, and a SentencePiece
tokenizer's lone ``▁``, have ``end <= start`` and carry no tag. Labels are assigned from
character spans and decoded back to character spans through the same offsets, so entity
offsets are exact for English and for Chinese (a WordPiece vocabulary makes every CJK character
a token of its own; a SentencePiece one has multi-character pieces such as 订单, and entities
then start and end at piece boundaries).

Shared by the intent/entity model (:mod:`components.nlu`) and the personal-data tagger
(:mod:`components.privacy.tagger`). Pure Python: no torch, transformers or rasa here, so the
tagging rules are testable alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The tag of tokens outside any entity.
OUTSIDE = "O"
#: Target id of tokens that carry no tag (special and padding tokens); torch's ``ignore_index``.
IGNORE = -100


@dataclass
class EntitySpan:
    """A labelled character span (``end`` exclusive)."""

    start: int
    end: int
    label: str


def bio_tags(labels: Sequence[str]) -> list[str]:
    """The tag vocabulary for entity ``labels``: ``O``, then ``B-`` and ``I-`` of each label.

    Args:
        labels: Entity label names (each may contain ``-``; only the first one splits a tag).

    Returns:
        ``["O", "B-a", "I-a", "B-b", "I-b", ...]`` in the order of ``labels``.
    """
    return [OUTSIDE] + [f"{prefix}-{label}" for label in labels for prefix in ("B", "I")]


def token_tags(offsets: Sequence[Sequence[int]], spans: Sequence[EntitySpan]) -> list[str | None]:
    """The BIO tag of each token for the gold ``spans``.

    A token belongs to the first span (in the order given) that contains its first character;
    the first token of a span is ``B-``, its other tokens ``I-``. Spans that overlap are not
    merged: a token inside both goes to the earlier one. A span that contains no token's first
    character (it lies inside one multi-character piece, such as 北京 in the SentencePiece
    piece 北京市) takes the untagged tokens it overlaps, so it is never lost from the targets;
    decoded, it then covers the whole piece.

    Args:
        offsets: ``(start, end)`` character offsets per token.
        spans: Gold entity spans.

    Returns:
        One tag per token; ``None`` for tokens without characters (special or padding tokens,
        a SentencePiece tokenizer's lone ``▁``).
    """
    tags: list[str | None] = []
    seen: set[int] = set()
    for start, end in offsets:
        if end <= start:
            tags.append(None)
            continue
        tag = OUTSIDE
        for k, span in enumerate(spans):
            if span.start <= start < span.end:
                tag = f"{'I' if k in seen else 'B'}-{span.label}"
                seen.add(k)
                break
        tags.append(tag)
    for k, span in enumerate(spans):
        if k in seen or span.end <= span.start:
            continue
        prefix = "B"
        for i, (start, end) in enumerate(offsets):
            if end > start and tags[i] == OUTSIDE and start < span.end and span.start < end:
                tags[i] = f"{prefix}-{span.label}"
                prefix = "I"
    return tags


def tag_ids(
    offsets: Sequence[Sequence[int]], spans: Sequence[EntitySpan], tags: Sequence[str]
) -> list[int]:
    """Training targets: the index in ``tags`` of each token's tag (see :func:`token_tags`).

    Args:
        offsets: ``(start, end)`` character offsets per token.
        spans: Gold entity spans.
        tags: The tag vocabulary (see :func:`bio_tags`).

    Returns:
        One id per token: :data:`IGNORE` for tokens without characters, and ``0`` (the index
        of ``O`` in :func:`bio_tags`) for tags of labels outside the vocabulary.
    """
    index = {tag: i for i, tag in enumerate(tags)}
    return [IGNORE if tag is None else index.get(tag, 0) for tag in token_tags(offsets, spans)]


def decode_tags(
    text: str,
    offsets: Sequence[Sequence[int]],
    tags: Sequence[str],
    confidences: Sequence[float],
) -> list[dict[str, Any]]:
    """Entity spans from one predicted tag (and its confidence) per token.

    A token continues the entity before it when it has the same label and is tagged ``I-``,
    or is tagged ``B-`` but starts right where the entity ends, inside an ASCII word (a
    sub-word piece such as ``KF`` + ``##12``, or SentencePiece's ``KF`` + ``100``). Anything
    else with a label starts a new entity, so an ``I-`` without a ``B-`` (or after another
    label) is read as a beginning, and
    adjacent Chinese entities of one label (``B I B I``) stay apart. Spans that stop inside an
    ASCII word are grown to the whole word.

    Args:
        text: The message the offsets refer to.
        offsets: ``(start, end)`` character offsets per token; tokens with ``end <= start``
            (special or padding tokens, a lone ``▁``) are skipped.
        tags: Predicted tag per token (``O``, ``B-label`` or ``I-label``).
        confidences: Probability of each predicted tag.

    Returns:
        Rasa-style entities: ``entity``, ``start``, ``end``, ``value`` and
        ``confidence_entity`` (the mean confidence of the entity's tokens).
    """
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for (start, end), tag, confidence in zip(offsets, tags, confidences, strict=True):
        if end <= start:
            continue
        if tag == OUTSIDE:
            current = None
            continue
        prefix, label = tag.split("-", 1)
        if (
            current is not None
            and current["entity"] == label
            and (prefix == "I" or (start == current["end"] and inside_word(text, start)))
        ):
            current["end"] = end
            current["confidences"].append(confidence)
            continue
        current = {"entity": label, "start": start, "end": end, "confidences": [confidence]}
        spans.append(current)
    entities = []
    for span in spans:
        start, end = expand_to_word(text, span["start"], span["end"])
        entities.append(
            {
                "entity": span["entity"],
                "start": start,
                "end": end,
                "value": text[start:end],
                "confidence_entity": float(np.mean(span["confidences"])),
            }
        )
    return entities


def expand_to_word(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow a span that stops inside an ASCII word to the whole word (``KF10|0234``).

    Args:
        text: The text the span refers to.
        start: First character of the span.
        end: One past its last character.

    Returns:
        The grown ``(start, end)``.
    """
    while inside_word(text, start):
        start -= 1
    while inside_word(text, end):
        end += 1
    return start, end


def inside_word(text: str, position: int) -> bool:
    """Whether ``position`` continues a Latin/digit word (a sub-word piece, not a new entity).

    Chinese characters are words of their own: a ``B-`` tag right after an entity of the same
    type starts a new one there (两个相邻的城市 stay two entities).

    Args:
        text: The text.
        position: A boundary between two characters of ``text``.

    Returns:
        True when the characters on both sides of ``position`` are ASCII letters or digits.
    """
    if position <= 0 or position >= len(text):
        return False
    return all(ch.isascii() and ch.isalnum() for ch in text[position - 1 : position + 1])


ROLE, GROUP = "role", "group"  # Rasa's entity attribute names
_PART = "\x1f"  # joins entity, role and group into one tag label (never in entity names)


def entity_label(entity: dict[str, Any]) -> str:
    """One tag label for an annotated entity, its role and group included (``city`` + ``from``)."""
    label = str(entity["entity"])
    if entity.get(ROLE):
        label += f"{_PART}role={entity[ROLE]}"
    if entity.get(GROUP):
        label += f"{_PART}group={entity[GROUP]}"
    return label


def split_entity_label(entity: dict[str, Any]) -> dict[str, Any]:
    """The predicted entity with its label split back into ``entity``, ``role`` and ``group``."""
    name, *parts = str(entity["entity"]).split(_PART)
    out = {**entity, "entity": name}
    for part in parts:
        key, _, value = part.partition("=")
        out[ROLE if key == "role" else GROUP] = value
    return out
