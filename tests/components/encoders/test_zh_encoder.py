"""The Chinese encoder: the committed delta, its assembly, and a tiny training run end to end."""

from __future__ import annotations

import json
import random
import re
import shutil

import pytest

from components.encoders import delta
from components.encoders.zh_adaptation import main as adapt
from components.errors import ModelNotFoundError
from knowledge.index import DOCS_DIR


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


@pytest.mark.slow
def test_training_exports_a_delta_that_assembles_and_loads(tmp_path):
    """Two steps on a tiny corpus made from the shop's Chinese documents."""
    sentences = [
        s
        for path in sorted(DOCS_DIR.glob("*.zh.md"))
        for s in re.split(r"[。\n]", path.read_text(encoding="utf-8"))
        if len(s) > 6 and not s.startswith("#")
    ]
    pairs = tmp_path / "data" / "zh_pairs"
    pairs.mkdir(parents=True)
    rng = random.Random(0)
    rows = [
        {"s1": a, "s2": b, "label": int(rng.random() < 0.5)}
        for a, b in zip(sentences, sentences[1:], strict=False)
    ]
    (pairs / "bq_train.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows * 3), encoding="utf-8"
    )
    out = tmp_path / "delta.safetensors"
    argv = ["--datasets", str(tmp_path / "data"), "--workdir", str(tmp_path / "work")]
    assert adapt([*argv, "--out", str(out), "--steps", "2", "--threads", "1"]) == 0
    assert (tmp_path / "work" / "checkpoint.pt").is_file()  # resumable
    tensors, metadata = delta.read_delta(out)
    assert tensors["new_rows"].shape[0] == len(metadata["new_tokens"]) > 0
    assert any(k.startswith("lora.") for k in tensors)
    folder = delta.assemble(tmp_path / "assembled", delta=out, checksum_file=None)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    assert model.encode(["退货政策"]).shape == (1, 384)
