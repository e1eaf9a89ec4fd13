"""The committed encoder delta: its checksum, size and card, its merge, and what it learnt."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from components.encoders import multilingual
from components.errors import ModelNotFoundError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def small_bert():
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    return BertModel(config, add_pooling_layer=False).eval()


def test_committed_delta_is_small_checked_and_documented():
    delta = multilingual.DELTA_FILE
    assert delta.is_file(), "the delta is committed (python -m training encoder rebuilds it)"
    assert delta.stat().st_size <= 25 * 1024 * 1024
    assert multilingual.verify() == multilingual.expected_checksum()
    from safetensors import safe_open

    with safe_open(str(delta), framework="pt") as handle:
        meta = handle.metadata()
        keys = list(handle.keys())
    assert json.loads(meta["config"])["lora_rank"] > 0
    assert all(k.startswith("lora.") for k in keys) and keys
    card = (multilingual.ARTIFACTS / "MODEL_CARD.md").read_text(encoding="utf-8")
    for needed in ("python -m training encoder", "research-use only", "sha256", "MIT"):
        assert needed.lower() in card.lower(), needed


def test_a_changed_delta_is_refused(tmp_path):
    copy = tmp_path / "d.safetensors"
    copy.write_bytes(multilingual.DELTA_FILE.read_bytes() + b"x")
    with pytest.raises(ModelNotFoundError, match="does not match its checksum"):
        multilingual.verify(copy, multilingual.CHECKSUM_FILE)
    with pytest.raises(ModelNotFoundError, match="missing"):
        multilingual.verify(tmp_path / "none.safetensors", multilingual.CHECKSUM_FILE)


def test_merge_adds_the_low_rank_update(tmp_path):
    model = small_bert()
    name = "encoder.layer.0.attention.self.query"
    before = dict(model.named_modules())[name].weight.detach().clone()
    a, b = torch.randn(4, 32), torch.randn(32, 4)
    path = tmp_path / "d.safetensors"
    save_file({f"lora.{name}.A": a, f"lora.{name}.B": b}, str(path), metadata={"lora_scale": "2.0"})
    multilingual.merge(model, path)
    after = dict(model.named_modules())[name].weight
    assert torch.allclose(after, before + 2.0 * b @ a, atol=1e-5)


def test_merge_names_a_module_the_model_lacks(tmp_path):
    path = tmp_path / "d.safetensors"
    save_file(
        {
            "lora.encoder.layer.9.output.dense.A": torch.zeros(2, 2),
            "lora.encoder.layer.9.output.dense.B": torch.zeros(2, 2),
        },
        str(path),
    )
    with pytest.raises(ModelNotFoundError, match="encoder.layer.9.output.dense"):
        multilingual.merge(small_bert(), path)


@pytest.mark.slow
def test_tuned_encoder_puts_paraphrases_closer_than_unrelated_questions():
    from sentence_transformers import SentenceTransformer

    from components.model_prep import e5_path

    model = SentenceTransformer(str(e5_path()), device="cpu")
    cases = [
        ("运费多少钱？", "邮费怎么算", "我的订单什么时候退款"),
        ("怎么修改收货地址", "地址填错了能改吗", "你们支持哪些付款方式"),
        ("花呗可以分期吗", "能用花呗分期付款吗", "快递几天能到"),
        ("How much is shipping?", "What does delivery cost?", "Can I return a used item?"),
        ("Where is my order?", "Track my package please", "Do you sell gift cards?"),
    ]
    for anchor, paraphrase, unrelated in cases:
        vectors = model.encode(
            [anchor, paraphrase, unrelated], prompt_name="query", normalize_embeddings=True
        )
        close, far = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
        assert close > far, (anchor, close, far)
