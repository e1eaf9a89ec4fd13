"""The name/address tagger's training data and trainer (:mod:`training.privacy`)."""

from __future__ import annotations

from pathlib import Path

import torch

from components.privacy.tagger import CHECKSUM_FILE, MODEL_FILE, PIITagger, TaggerConfig
from training.privacy.tagger_data import Sample, chinese_samples, english_samples
from training.privacy.tagger_training import choose_threshold, span_f, train


def test_generated_samples_label_their_values():
    for sample in [*english_samples(200, seed=3), *chinese_samples(100, seed=3)]:
        for label, start, end in sample.spans:
            value = sample.text[start:end]
            assert value.strip() == value and value, (sample.text, label)
    labels = {label for s in english_samples(200, seed=3) for label, _, _ in s.spans}
    assert labels == {"NAME", "ADDRESS"}


def test_tiny_training_lowers_the_loss_and_round_trips(tmp_path):
    samples = list(english_samples(160, seed=1)) + list(chinese_samples(80, seed=1))
    config = TaggerConfig(width=32, dilations=(1, 2), hash_buckets=1024, char_dim=16)
    tagger, history = train(samples, config, epochs=3, batch_size=16, learning_rate=3e-3, seed=0)
    assert history[-1] < history[0]
    tagger.config.threshold = choose_threshold(tagger, samples[:40])
    path = tmp_path / "tagger.safetensors"
    tagger.save(path)
    loaded = PIITagger.load(path)
    texts = [s.text for s in samples[:20]]
    feats = tagger.batch(texts)
    assert torch.allclose(loaded.module(feats), tagger.module(feats), atol=5e-2)  # float16
    assert loaded.config.threshold == tagger.config.threshold
    assert loaded.config.chars == tagger.config.chars
    assert path.stat().st_size < 1_000_000


def test_span_scores():
    gold = [Sample("ab", [("NAME", 0, 2)])]
    assert span_f(gold, [[("NAME", 0, 2, 0.9)]])["f1"] == 1.0
    assert span_f(gold, [[("NAME", 0, 1, 0.9)]])["f1"] == 0.0
    assert span_f(gold, [[]])["recall"] == 0.0


def test_shipped_model_card_names_the_command_and_the_data():
    card = (MODEL_FILE.parent / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "python -m training tagger" in card
    assert "CLUENER" in card and "research" in card
    assert Path(CHECKSUM_FILE).read_text().split()[0] in card or "sha256" in card.lower()
