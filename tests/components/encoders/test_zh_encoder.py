"""The Chinese encoder: the committed delta and its assembly.

A tiny training run end to end is in ``tests/training/encoders``.
"""

from __future__ import annotations

import shutil

import pytest

from components.encoders import delta
from components.errors import ModelNotFoundError


def test_the_committed_delta_matches_its_checksum_and_is_small():
    assert delta.verify() == delta.expected_checksum()
    assert delta.DELTA_FILE.stat().st_size <= 25 * 1024 * 1024
    assert (delta.ARTIFACTS / "MODEL_CARD.md").is_file()


def test_a_changed_delta_is_refused(tmp_path):
    bad = tmp_path / "delta.safetensors"
    shutil.copy(delta.DELTA_FILE, bad)
    with bad.open("r+b") as handle:
        handle.seek(-1, 2)
        handle.write(b"\x00" if handle.read(1) != b"\x00" else b"\x01")
    with pytest.raises(ModelNotFoundError, match="checksum"):
        delta.verify(bad)
    with pytest.raises(ModelNotFoundError, match="missing"):
        delta.verify(tmp_path / "nothing.safetensors")


@pytest.mark.slow
def test_the_assembled_encoder_reads_chinese():
    from sentence_transformers import SentenceTransformer

    from components.model_prep import minilm_zh_path

    folder = minilm_zh_path()
    model = SentenceTransformer(str(folder), device="cpu")
    tokens = model.tokenizer.tokenize("退货运费谁出？我的订单KF100871到哪了")
    assert "[UNK]" not in tokens and "退" in tokens
    a, b, c = model.encode(
        ["退货的运费由谁承担", "退货要自己出运费吗", "明天杭州会下雨吗"], normalize_embeddings=True
    )
    assert a @ b > a @ c + 0.1  # two paraphrases are closer than an unrelated pair
    assert minilm_zh_path() == folder  # assembled once
