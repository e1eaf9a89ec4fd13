"""The learned name/address tagger: features, persistence, and the committed model.

Its training data and trainer are tested in ``tests/training/privacy``.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from components.errors import ConfigError, ModelNotFoundError
from components.privacy.pii import PIIMasker
from components.privacy.recognisers import TOKEN, find_pii
from components.privacy.tagger import (
    CHECKSUM_FILE,
    MODEL_FILE,
    PIITagger,
    TaggerConfig,
    default_tagger,
    featurize,
    token_offsets,
    viterbi,
)


@pytest.fixture(scope="module")
def shipped() -> PIITagger:
    return default_tagger()


def test_features_line_up_with_the_characters():
    config = TaggerConfig(chars=["a", "r", "s"])
    index = {ch: i + 2 for i, ch in enumerate(config.chars)}
    text = "Sara 王小明 42"
    feats = featurize(text, config, index)
    assert all(len(f) == len(text) for f in feats)
    chars, classes, shapes, positions, hash_a, _, zh_pos, zh_seg = feats
    assert chars[:4] == [index["s"], index["a"], index["r"], index["a"]]  # lower-cased
    assert classes[0] == 3 and classes[1] == 4 and classes[5] == 6 and classes[-1] == 5
    assert shapes[0] == shapes[3] == 1 + 7  # "Sara": title case, starts the text
    assert zh_pos[:5] == [0] * 5 and all(p > 0 for p in zh_pos[5:8])  # jieba: Chinese only
    assert zh_seg[5:8] in ([1, 2, 3], [1, 3, 4], [4, 1, 3], [4, 4, 4])
    assert positions[0] == 2 and positions[3] == 4
    assert hash_a[0] == hash_a[3] != 0  # one word, one bucket
    assert hash_a[5] != hash_a[6]  # CJK: bigrams around each character


def test_tokens_are_latin_words_and_single_other_characters():
    assert PIITagger.offsets("a b\nc") == [(0, 1), (1, 1), (2, 3), (3, 3), (4, 5)]
    assert token_offsets("O'Neil 王五.") == [
        (0, 6),
        (1, 1),
        (2, 2),
        (3, 3),
        (4, 4),
        (5, 5),
        (6, 6),
        (7, 8),
        (8, 9),
        (9, 10),
    ]


def test_viterbi_never_starts_an_entity_inside():
    tags = ["O", "B-NAME", "I-NAME", "B-ADDRESS", "I-ADDRESS"]
    # the most probable tag of each token alone would be O, I-NAME, I-ADDRESS
    probs = np.array(
        [
            [0.9, 0.05, 0.03, 0.01, 0.01],
            [0.3, 0.25, 0.4, 0.03, 0.02],
            [0.1, 0.05, 0.4, 0.0, 0.45],
        ]
    )
    path = [tags[i] for i in viterbi(np.log(probs + 1e-9), tags)]
    assert path == ["O", "B-NAME", "I-NAME"]


def test_bad_config_names_the_value():
    with pytest.raises(ConfigError, match="width"):
        TaggerConfig(width=0)
    with pytest.raises(ConfigError, match="threshold"):
        TaggerConfig(threshold=1.5)


def test_missing_or_altered_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no PII tagger"):
        PIITagger.load(tmp_path / "missing.safetensors")
    copy = tmp_path / "tagger.safetensors"
    shutil.copy(MODEL_FILE, copy)
    with copy.open("r+b") as handle:
        handle.seek(-8, 2)
        handle.write(b"\x00" * 8)
    with pytest.raises(ModelNotFoundError, match="does not match"):
        PIITagger.load(copy, CHECKSUM_FILE)
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(Exception):  # noqa: B017 - safetensors' own error for a broken header
        PIITagger.load(tmp_path / "junk.safetensors")


def test_committed_model_is_small_and_matches_its_checksum(shipped):
    assert MODEL_FILE.stat().st_size < 25_000_000
    assert shipped.config.labels == ("NAME", "ADDRESS")
    assert 0.3 <= shipped.config.threshold <= 0.8


@pytest.mark.parametrize(
    ("text", "value", "label"),
    [
        ("hi, Sara Schwarz here, my parcel is late", "Sara Schwarz", "NAME"),
        ("the order for Tomasz Nowak never came", "Tomasz Nowak", "NAME"),
        ("please send it to 4821 Maple Avenue, Springfield", "4821 Maple Avenue", "ADDRESS"),
        ("王建国的快递到哪了", "王建国", "NAME"),
        ("浙江省杭州市西湖区文三路90号能送吗", "浙江省杭州市西湖区文三路90号", "ADDRESS"),
    ],
)
def test_committed_model_finds_names_and_addresses_without_a_cue(shipped, text, value, label):
    spans = find_pii(text, shipped)
    assert (label, value) in {(s.type, s.value) for s in spans}
    if label == "NAME":  # no cue: the rules alone do not find it (street shapes they do)
        assert find_pii(text, None) == []


@pytest.mark.parametrize(
    "text",
    [
        "where is my order KF100234?",
        "I want to return the Samsung Galaxy I bought on Monday",
        "我的快递什么时候到",
        "How do I reset my password",
    ],
)
def test_committed_model_leaves_ordinary_messages_alone(shipped, text):
    assert find_pii(text, shipped) == []


def test_masking_with_the_tagger_is_idempotent_and_keeps_rule_spans(shipped):
    masker = PIIMasker("k" * 32, tagger=shipped)
    text = "hi, Sara Schwarz here, call 13812345678"
    masked = masker.mask(text)
    assert "Sara" not in masked and "13812345678" not in masked
    assert len(TOKEN.findall(masked)) == 2
    assert masker.mask(masked) == masked
    types = [s.type for s in masker.find(text)]
    assert types == ["NAME", "PHONE"]


def test_assistant_text_gets_the_rules_and_names_already_found(shipped):
    masker = PIIMasker("k" * 32, tagger=shipped)
    policy = "Standard delivery within mainland China takes 2 to 4 working days."
    assert masker.mask(policy, learned=False) == policy
    said = masker.mask("hi, Sara Schwarz here, my parcel is late")
    token = said[4:19]
    reply = masker.mask("Thanks, Sara Schwarz. Call 13812345678 if it is not there.", learned=False)
    assert reply.startswith(f"Thanks, {token}.") and "[PHONE_" in reply
