"""Tiny-config fine-tuning through the real code paths: loss falls, resume, merge, load."""

import json

import pytest
import torch

from components.llm.transformers_backend import TransformersBackend
from training.llm import data
from training.llm.config import FinetuneConfig
from training.llm.train import BASE_NAME, IGNORE, encode, load_base, merge, train

pytestmark = pytest.mark.slow

TINY = {
    "batch_size": 4, "grad_accumulation": 1, "epochs": 3.0, "learning_rate": 1e-3,
    "warmup_steps": 0, "save_steps": 1, "max_length": 192, "lora_r": 4, "lora_alpha": 8,
}  # fmt: skip


@pytest.fixture(scope="module")
def examples():
    made = list(data.frame_examples(12, seed=4, customers=["hello"]))
    return made[:8], made[8:]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, examples):
    out = tmp_path_factory.mktemp("adapter")
    train_examples, eval_examples = examples
    # stopped by the time limit after its first step: the checkpoint stays for a resume
    first = train(
        FinetuneConfig(**TINY, max_minutes=1e-6), train_examples, eval_examples, out, progress=False
    )
    assert first["stopped_by_time_limit"] and first["steps"] >= 1
    assert any((out / "checkpoints").glob("checkpoint-*"))
    report = train(FinetuneConfig(**TINY), train_examples, eval_examples, out, progress=False)
    return out, first, report


def test_encode_masks_the_prompt_and_keeps_the_reply(examples):
    _, tokenizer = load_base()
    example = examples[0][0]
    row = encode(example, tokenizer, 512)
    reply = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != IGNORE]
    assert tokenizer.decode(reply) == example.messages[-1]["content"] + tokenizer.eos_token
    short = encode(example, tokenizer, 40)
    assert len(short["input_ids"]) == 40 and short["labels"][-1] == tokenizer.eos_token_id


def test_training_lowers_the_loss_and_resumes(adapter):
    out, first, report = adapter
    assert report["resumed_from_step"] == first["steps"]
    assert report["steps"] == 6  # 3 epochs x 2 batches of 4: the resumed run finished them
    assert report["eval_loss_after"] < report["eval_loss_before"]
    assert not report["stopped_by_time_limit"] and not (out / "checkpoints").exists()
    config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["base_model_name_or_path"] == BASE_NAME  # never this machine's path
    assert (out / "adapter_model.safetensors").stat().st_size < 25e6
    assert json.loads((out / "training_report.json").read_text())["train_examples"] == 8


def test_merged_model_equals_base_plus_adapter_and_loads_in_every_decoder(adapter, tmp_path):
    from peft import PeftModel

    out, _, _ = adapter
    merged_dir = merge(out, tmp_path / "merged")
    base, tokenizer = load_base()
    with_adapter = PeftModel.from_pretrained(base, str(out)).eval()
    ids = tokenizer("Order SO1234567 ships by 3 May.", return_tensors="pt")["input_ids"]
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32).eval()
    with torch.inference_mode():
        expected, got = with_adapter(ids).logits, merged(ids).logits
    assert torch.allclose(expected, got, atol=1e-3)

    chat = [{"role": "user", "content": "Rewrite politely: Your order SO1234567 ships by 3 May."}]
    replies = []
    for backend in (
        TransformersBackend(model_path=str(merged_dir)),  # lean int8 decoder on merged weights
        TransformersBackend(model_path=str(merged_dir), decoder="generate", quantize="none"),
        TransformersBackend(
            adapter=str(out), decoder="generate", quantize="none"
        ),  # merged at load
    ):
        reply = backend.generate(chat, max_new_tokens=8)
        assert reply.new_tokens > 0
        replies.append(reply.text)
    assert replies[1] == replies[2]  # merging at load = loading the merged folder
