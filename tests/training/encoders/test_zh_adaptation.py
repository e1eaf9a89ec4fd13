"""The Chinese encoder's adaptation (:mod:`training.encoders.zh_adaptation`), end to end."""

from __future__ import annotations

import json
import random
import re

import pytest

from components.assistants import Assistant
from components.encoders import delta
from components.model_prep import minilm_path
from training.encoders.zh_adaptation import main as adapt


@pytest.mark.slow
def test_training_exports_a_delta_that_assembles_and_loads(tmp_path):
    """Two steps on a tiny corpus made from the shop's Chinese documents."""
    sentences = [
        s
        for path in sorted(Assistant("shop").docs.glob("*.zh.md"))
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
    folder = delta.assemble(tmp_path / "assembled", minilm_path(), delta=out, checksum_file=None)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    assert model.encode(["退货政策"]).shape == (1, 384)
