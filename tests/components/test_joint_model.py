"""Exact character offsets for entity labels and decoded spans (en and zh)."""

import pytest
import torch

from components.joint_model import EntitySpan, JointClassifier, _expand_to_word, load_tokenizer
from components.model_prep import minilm_path


@pytest.fixture(scope="module")
def classifier() -> JointClassifier:
    tokenizer = load_tokenizer(minilm_path())
    return JointClassifier(tokenizer, model=None, intents=["x"], tags=["O", "B-id", "I-id"])


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("where is order KF100234 now", 15, 23),
        ("查一下订单KF100234谢谢", 5, 13),
        ("订单号是 kf103300", 5, 13),
        ("寄到北京市朝阳区", 2, 8),
    ],
)
def test_labels_and_decoding_round_trip(classifier, text, start, end):
    enc = classifier._encode([text])
    offsets = enc["offset_mapping"][0]
    targets = classifier._tag_targets(offsets, [EntitySpan(start, end, "id")])
    # turn the gold tags into one-hot "probabilities" and decode them back
    probs = torch.zeros(len(targets), 3)
    for i, t in enumerate(targets):
        probs[i, max(t, 0)] = 1.0
    entities = classifier._decode(text, offsets.tolist(), probs)
    assert [(e["start"], e["end"], e["value"]) for e in entities] == [(start, end, text[start:end])]


def test_partial_word_spans_grow_to_the_word():
    text = "order KF100234!"
    assert _expand_to_word(text, 8, 11) == (6, 14)
    assert _expand_to_word("订单KF1", 2, 4) == (2, 5)
