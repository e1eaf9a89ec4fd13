"""The hyper-parameters of a fine-tuning run: one block, overridable from a YAML file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from components.errors import ConfigError


@dataclass
class FinetuneConfig:
    """What ``python -m training finetune data/train`` does (defaults: the shipped run)."""

    # random seed for data building, the split, LoRA initialisation and shuffling
    seed: int = 7
    # rephrase examples built (frames, StackFAQ paraphrases, the domain's responses)
    rephrase_examples: int = 1000
    # grounded-answer examples built (synthetic policies, StackFAQ, Chinese medical Q&A)
    grounded_examples: int = 320
    # share of groups (reply frames, FAQ threads) held back for evaluation
    eval_share: float = 0.08
    # LoRA rank, scaling and dropout; the modules it adapts (all of a Llama block's linears)
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: [
            "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
        ]
    )  # fmt: skip
    # optimiser: AdamW learning rate, linear warm-up steps, weight decay
    learning_rate: float = 3e-4
    warmup_steps: int = 20
    weight_decay: float = 0.0
    # examples per step and gradient accumulation (effective batch = their product)
    batch_size: int = 4
    grad_accumulation: int = 2
    # passes over the training examples
    epochs: float = 1.0
    # tokens per example: longer ones are cut from the prompt's start (the answer is kept)
    max_length: int = 448
    # hard wall-clock bound on training: stops, saves and evaluates when reached
    max_minutes: float = 27.0
    # checkpoint every this many optimiser steps (a killed run resumes from the last one)
    save_steps: int = 25
    # torch threads (None: torch's default, all cores)
    threads: int | None = None

    def __post_init__(self) -> None:
        """Check every value (a bad one raises ConfigError naming it)."""
        positive = (
            "rephrase_examples", "lora_r", "lora_alpha", "batch_size", "grad_accumulation",
            "max_length", "save_steps",
        )  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name.endswith("examples") else 1):
                raise ConfigError(name, value, "a positive integer", component="finetune")
        if not 0 <= self.eval_share < 1:
            raise ConfigError(
                "eval_share", self.eval_share, "a share in [0, 1)", component="finetune"
            )
        for name in ("learning_rate", "epochs", "max_minutes"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) <= 0:
                raise ConfigError(name, getattr(self, name), "a number > 0", component="finetune")

    @classmethod
    def from_file(cls, path: Path | None, **overrides: Any) -> FinetuneConfig:
        """Defaults, then the keys of a YAML file, then ``overrides``.

        Raises:
            ConfigError: An unknown key or a bad value (named).
        """
        import yaml

        values: dict[str, Any] = {}
        if path is not None:
            values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            if not isinstance(values, dict):
                raise ConfigError("config", str(path), "a YAML mapping", component="finetune")
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(key, values[key], f"one of {sorted(known)}", component="finetune")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable values."""
        return asdict(self)
