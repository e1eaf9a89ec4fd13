"""BIO tags <-> character spans, without torch (components.bio)."""

import subprocess
import sys
from pathlib import Path

import pytest

from components.bio import (
    IGNORE,
    OUTSIDE,
    EntitySpan,
    bio_tags,
    decode_tags,
    expand_to_word,
    inside_word,
    tag_ids,
    token_tags,
)

ROOT = Path(__file__).resolve().parents[3]
SPECIAL = [0, 0]  # [CLS], [SEP] and padding have empty offsets


def chars(text: str) -> list[list[int]]:
    """One token per character, framed by two special tokens (as for Chinese)."""
    return [SPECIAL] + [[i, i + 1] for i in range(len(text))] + [SPECIAL]


def round_trip(text, offsets, spans, labels):
    tags = token_tags(offsets, spans)
    predicted = [tag or OUTSIDE for tag in tags]
    entities = decode_tags(text, offsets, predicted, [1.0] * len(offsets))
    assert set(bio_tags(labels)) >= {t for t in tags if t is not None}
    return [(e["entity"], e["start"], e["end"], e["value"]) for e in entities]


def test_tag_vocabulary():
    assert bio_tags([]) == ["O"]
    assert bio_tags(["city", "order-id"]) == ["O", "B-city", "I-city", "B-order-id", "I-order-id"]


def test_english_word_pieces_round_trip():
    text = "where is order KF100234 now"
    # where | is | order | KF | ##100 | ##234 | now
    offsets = [SPECIAL, [0, 5], [6, 8], [9, 14], [15, 17], [17, 20], [20, 23], [24, 27], SPECIAL]
    spans = [EntitySpan(15, 23, "id")]
    assert token_tags(offsets, spans) == [None, "O", "O", "O", "B-id", "I-id", "I-id", "O", None]
    assert round_trip(text, offsets, spans, ["id"]) == [("id", 15, 23, "KF100234")]


def test_chinese_per_character_round_trip():
    text = "寄到北京市朝阳区"
    spans = [EntitySpan(2, 5, "city"), EntitySpan(5, 8, "district")]
    offsets = chars(text)
    assert token_tags(offsets, spans)[1:-1] == [
        "O", "O", "B-city", "I-city", "I-city", "B-district", "I-district", "I-district",
    ]  # fmt: skip
    assert round_trip(text, offsets, spans, ["city", "district"]) == [
        ("city", 2, 5, "北京市"),
        ("district", 5, 8, "朝阳区"),
    ]


def test_adjacent_chinese_spans_of_one_label_stay_apart():
    text = "北京上海"
    spans = [EntitySpan(0, 2, "city"), EntitySpan(2, 4, "city")]
    assert token_tags(chars(text), spans)[1:-1] == ["B-city", "I-city", "B-city", "I-city"]
    assert round_trip(text, chars(text), spans, ["city"]) == [
        ("city", 0, 2, "北京"),
        ("city", 2, 4, "上海"),
    ]


def test_adjacent_spans_of_different_labels_round_trip():
    text = "KF1 北京"
    offsets = [SPECIAL, [0, 3], [4, 5], [5, 6], SPECIAL]
    spans = [EntitySpan(0, 3, "id"), EntitySpan(4, 6, "city")]
    assert round_trip(text, offsets, spans, ["id", "city"]) == [
        ("id", 0, 3, "KF1"),
        ("city", 4, 6, "北京"),
    ]


def test_overlapping_spans_give_the_token_to_the_earlier_span():
    text = "一二三四五六"
    spans = [EntitySpan(0, 4, "x"), EntitySpan(2, 6, "y")]
    assert token_tags(chars(text), spans)[1:-1] == ["B-x", "I-x", "I-x", "I-x", "B-y", "I-y"]
    assert round_trip(text, chars(text), spans, ["x", "y"]) == [
        ("x", 0, 4, "一二三四"),
        ("y", 4, 6, "五六"),
    ]
    # a span inside another one gets no token of its own
    inner = [EntitySpan(0, 6, "x"), EntitySpan(2, 3, "y")]
    assert round_trip(text, chars(text), inner, ["x", "y"]) == [("x", 0, 6, text)]


def test_tokens_are_assigned_by_their_first_character():
    # a span that starts inside a token does not claim it; one that ends inside it does
    offsets = [[0, 4], [4, 8]]
    assert token_tags(offsets, [EntitySpan(2, 8, "x")]) == ["O", "B-x"]
    assert token_tags(offsets, [EntitySpan(0, 5, "x")]) == ["B-x", "I-x"]
    assert token_tags(offsets, [EntitySpan(3, 3, "x")]) == ["O", "O"]  # empty span


def test_a_span_inside_one_piece_takes_that_piece():
    # SentencePiece pieces hold several characters (寄到 | 北京市 | 朝阳区): a span that holds
    # no piece's first character still gets the piece(s) it overlaps, and decodes to them
    text = "寄到北京市朝阳区"
    offsets = [SPECIAL, [0, 2], [2, 5], [5, 8], SPECIAL]
    assert token_tags(offsets, [EntitySpan(2, 4, "city")]) == [None, "O", "B-city", "O", None]
    # one that holds some piece's first character is tagged by the first-character rule alone
    assert token_tags(offsets, [EntitySpan(3, 6, "x")]) == [None, "O", "O", "B-x", None]
    assert round_trip(text, offsets, [EntitySpan(3, 4, "city")], ["city"]) == [
        ("city", 2, 5, "北京市")
    ]
    # a piece already tagged for an earlier span stays with it
    spans = [EntitySpan(2, 5, "x"), EntitySpan(3, 4, "y")]
    assert token_tags(offsets, spans) == [None, "O", "B-x", "O", None]


def test_character_less_pieces_carry_no_tag():
    # a SentencePiece tokenizer's lone "▁" (trimmed to an empty span) is like a special token
    text = "订单KF100"
    offsets = [SPECIAL, [0, 0], [0, 2], [2, 4], [4, 7], SPECIAL]
    tags = bio_tags(["id"])
    assert tag_ids(offsets, [EntitySpan(2, 7, "id")], tags) == [IGNORE, IGNORE, 0, 1, 2, IGNORE]
    assert decode(text, offsets, ["O", "B-id", "O", "B-id", "I-id", "O"]) == [("id", 2, 7, "KF100")]


def test_tag_ids_ignore_special_tokens_and_unknown_labels():
    tags = bio_tags(["city"])
    offsets = chars("去北京")
    assert tag_ids(offsets, [EntitySpan(1, 3, "city")], tags) == [IGNORE, 0, 1, 2, IGNORE]
    # a label outside the vocabulary trains as O
    assert tag_ids(offsets, [EntitySpan(1, 3, "person")], tags) == [IGNORE, 0, 0, 0, IGNORE]
    assert tag_ids([], [EntitySpan(0, 1, "city")], tags) == []


def decode(text, offsets, tags, confidences=None):
    confidences = confidences or [1.0] * len(tags)
    return [
        (e["entity"], e["start"], e["end"], e["value"])
        for e in decode_tags(text, offsets, tags, confidences)
    ]


def test_i_without_b_starts_an_entity():
    text = "去北京"
    assert decode(text, chars(text), ["O", "O", "I-city", "I-city", "O"]) == [
        ("city", 1, 3, "北京")
    ]
    # I- of another label does not continue the entity before it
    assert decode(text, chars(text), ["O", "B-x", "I-y", "I-y", "O"]) == [
        ("x", 0, 1, "去"),
        ("y", 1, 3, "北京"),
    ]
    # O between two I- tags splits them
    assert decode("甲乙丙", chars("甲乙丙"), ["O", "I-x", "O", "I-x", "O"]) == [
        ("x", 0, 1, "甲"),
        ("x", 2, 3, "丙"),
    ]


def test_b_after_b_merges_only_inside_an_ascii_word():
    # KF | ##12: a second B- on a word piece continues the entity
    assert decode("KF12", [SPECIAL, [0, 2], [2, 4], SPECIAL], ["O", "B-id", "B-id", "O"]) == [
        ("id", 0, 4, "KF12")
    ]
    # after a space it is a new entity
    assert decode("ab cd", [[0, 2], [3, 5]], ["B-id", "B-id"]) == [
        ("id", 0, 2, "ab"),
        ("id", 3, 5, "cd"),
    ]
    # Chinese characters are words of their own
    assert decode("北京", [[0, 1], [1, 2]], ["B-city", "B-city"]) == [
        ("city", 0, 1, "北"),
        ("city", 1, 2, "京"),
    ]


def test_decoded_spans_grow_to_whole_ascii_words():
    # the model tagged only the middle piece of KF100234
    offsets = [[0, 5], [6, 8], [8, 11], [11, 14]]
    assert decode("order KF100234", offsets, ["O", "O", "B-id", "O"]) == [("id", 6, 14, "KF100234")]


def test_entity_confidence_is_the_mean_of_its_tokens():
    text = "去北京"
    entities = decode_tags(text, chars(text), ["O", "O", "B-c", "I-c", "O"], [1, 1, 0.9, 0.5, 1])
    assert entities == [
        {"entity": "c", "start": 1, "end": 3, "value": "北京", "confidence_entity": 0.7}
    ]


def test_nothing_to_decode():
    assert decode("", [SPECIAL, SPECIAL], ["B-x", "I-x"]) == []  # special tokens only
    assert decode("abc", chars("abc"), ["O"] * 5) == []
    with pytest.raises(ValueError):
        decode_tags("ab", chars("ab"), ["O"], [1.0])  # one tag per token


def test_expand_to_word_and_inside_word():
    assert expand_to_word("order KF100234!", 8, 11) == (6, 14)
    assert expand_to_word("订单KF1", 2, 4) == (2, 5)
    assert expand_to_word("订单", 0, 1) == (0, 1)
    assert inside_word("ab", 1)
    assert not inside_word("ab", 0) and not inside_word("ab", 2)
    assert not inside_word("a b", 1) and not inside_word("北京", 1)
    assert not inside_word("é1", 1)  # ASCII only


def test_importing_bio_loads_neither_torch_nor_transformers_nor_rasa():
    heavy = ("torch", "transformers", "rasa", "rasa_sdk")
    code = f"import sys, components.bio; print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
