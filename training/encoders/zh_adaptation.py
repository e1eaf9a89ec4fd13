"""Give the bundled English all-MiniLM-L6-v2 Chinese, and write the result as a small delta.

    python -m training zh-encoder            # ~60 min on 2 CPU cores, resumable
    python -m training zh-encoder --steps 20 --out /tmp/d.safetensors  # smoke run

Steps (all deterministic for a seed; every long step shows progress):

1. **Vocabulary.** The CJK characters of the public Chinese data in ``KEFU_DATASETS``
   (``../shared/datasets``: sentence pairs, e-commerce intents, FAQ queries, e-commerce
   dialogues, shopping reviews, CAIS/SMP2019, CLUENER), ranked by frequency; those seen at least
   ``min_count`` times and missing from MiniLM's vocabulary are appended (one token per character,
   so entity offsets stay exact).
2. **Initial embeddings.** A character co-occurrence matrix (window 2) of the same text, PPMI
   weighted and reduced by SVD; a ridge map fitted on the characters MiniLM already knows takes
   each new character's SVD vector into MiniLM's embedding space (so a new character starts near
   the known ones it is used like, not at random).
3. **Contrastive training** of the new embedding rows and a LoRA adapter (peft) on every linear
   layer of the encoder, with in-batch negatives (multiple-negatives ranking loss, symmetric) on
   positive pairs: BQ, AFQMC and ATEC question pairs, PAWS-X paraphrases, OCNLI entailments,
   STS-B pairs scored ≥ 4, CIC same-intent e-commerce messages and THS FAQ query paraphrases.
   Checkpoints every ``checkpoint_every`` steps in ``--workdir``; a rerun resumes from the last.
4. **Delta.** New rows and LoRA matrices in fp16 in one safetensors file, with the characters
   and the LoRA scale in its metadata (:mod:`components.encoders.delta` assembles it), and its
   SHA-256 next to it.

The LCQMC dev and BQ dev splits are never trained on (the benchmarks score them). Several sets
are research-use only (see the model card): so is the delta.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import shutil
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from components.encoders.delta import CHECKSUM_FILE, DELTA_FILE, extend_tokenizer, sha256
from training.paths import datasets_dir

logger = logging.getLogger(__name__)

#: BERT's CJK blocks (the tokenizer splits these into single characters).
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF))


def is_cjk(char: str) -> bool:
    """Whether BERT's tokenizer treats ``char`` as a Chinese character."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


@dataclass
class AdaptationConfig:
    """Hyper-parameters of one adaptation run (all of them; saved in the delta's metadata)."""

    seed: int = 13
    min_count: int = 3  # characters seen fewer times are left [UNK]
    max_new_tokens: int = 8000
    svd_dim: int = 64
    ridge: float = 1.0
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
    steps: int = 1200
    batch_pairs: int = 48
    max_length: int = 40
    learning_rate: float = 5e-4
    embedding_learning_rate: float = 2e-3
    warmup_steps: int = 100
    scale: float = 20.0  # cosine similarity scale of the ranking loss
    checkpoint_every: int = 100
    # share of each pair source in a batch (renormalised over the sources found)
    mix: dict[str, float] = field(
        default_factory=lambda: {
            "bq": 0.22,
            "afqmc_atec": 0.15,
            "pawsx": 0.08,
            "nli_sts": 0.05,
            "cic": 0.35,
            "ths": 0.15,
        }
    )


# ------------------------------------------------------------------ data


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _clean(text: str) -> str:
    return unicodedata.normalize("NFKC", str(text or "")).strip()


def load_pairs(root: Path, seed: int) -> dict[str, list[tuple[str, str]]]:
    """Positive pairs per source (train splits only)."""
    pairs: dict[str, list[tuple[str, str]]] = {}
    z = root / "zh_pairs"

    def positives(*names: str, ok=lambda r: r.get("label") in (1, "1")) -> list:  # noqa: ANN001
        out = []
        for name in names:
            path = z / name
            if path.is_file():
                out += [(_clean(r["s1"]), _clean(r["s2"])) for r in _jsonl(path) if ok(r)]
        return out

    pairs["bq"] = positives("bq_train.jsonl")
    pairs["afqmc_atec"] = positives("afqmc_train.jsonl", "atec_train.jsonl")
    pairs["pawsx"] = positives("pawsx_train.jsonl")
    pairs["nli_sts"] = positives(
        "ocnli_train.jsonl", ok=lambda r: r.get("label") == "entailment"
    ) + positives("stsb_train.jsonl", ok=lambda r: float(r.get("label") or 0) >= 4.0)
    cic = root / "cic" / "train.jsonl"
    if cic.is_file():
        by_intent: dict[str, list[str]] = {}
        for row in _jsonl(cic):
            by_intent.setdefault(row["label_des"], []).append(_clean(row["text"]))
        rng = random.Random(seed)
        cic_pairs = []
        for texts in by_intent.values():
            texts = sorted(set(texts))
            if len(texts) < 2:
                continue
            for _ in range(len(texts) * 2):
                a, b = rng.sample(texts, 2)
                cic_pairs.append((a, b))
        pairs["cic"] = cic_pairs
    ths = root / "ths_faq"
    if (ths / "faq.jsonl").is_file() and (ths / "queries.jsonl").is_file():
        questions = {r["faq_id"]: _clean(r["question"]) for r in _jsonl(ths / "faq.jsonl")}
        pairs["ths"] = [
            (_clean(r["query"]), questions[r["faq_id"]])
            for r in _jsonl(ths / "queries.jsonl")
            if r.get("faq_id") in questions
        ]
    return {k: [(a, b) for a, b in v if a and b and a != b] for k, v in pairs.items() if v}


def corpus_texts(root: Path) -> Iterator[str]:
    """Every Chinese text the vocabulary and the initial embeddings are built from."""
    for path in sorted((root / "zh_pairs").glob("*_train.jsonl")):
        for row in _jsonl(path):
            yield _clean(row.get("s1"))
            yield _clean(row.get("s2"))
    sources = {
        "cic/train.jsonl": ("text",),
        "ths_faq/queries.jsonl": ("query",),
        "ths_faq/faq.jsonl": ("question",),
        "jddc/train.jsonl": ("context", "response"),
        "zh_raw/shopping_reviews.jsonl": ("review",),
        "cais/train.jsonl": ("text",),
        "smp2019/train.jsonl": ("text",),
        "cluener2020/train.jsonl": ("text",),
        "medical_qa/qa.jsonl": ("title", "ask"),
    }
    for name, keys in sources.items():
        path = root / name
        if path.is_file():
            for row in _jsonl(path):
                for key in keys:
                    if row.get(key):
                        yield _clean(row[key])


def build_vocabulary(texts: list[str], known: set[str], config: AdaptationConfig) -> list[str]:
    """New CJK characters, most frequent first (ties by code point: deterministic)."""
    counts = Counter(ch for text in texts for ch in text if is_cjk(ch))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    new = [ch for ch, n in ranked if n >= config.min_count and ch not in known]
    return new[: config.max_new_tokens]


def initial_rows(
    texts: list[str],
    vocab: list[str],
    new_tokens: list[str],
    embeddings,  # noqa: ANN001
    config: AdaptationConfig,
) -> Any:  # noqa: ANN201
    """Embeddings for ``new_tokens``: PPMI-SVD vectors mapped into MiniLM's space (see above)."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import svds

    known_cjk = [t for t in vocab if len(t) == 1 and is_cjk(t)]
    chars = known_cjk + new_tokens
    index = {ch: i for i, ch in enumerate(chars)}
    size = len(chars)
    rows, cols = [], []
    for text in texts:
        ids = [index[ch] for ch in text if ch in index]
        for offset in (1, 2):
            rows.extend(ids[:-offset])
            cols.extend(ids[offset:])
    rows_a, cols_a = np.asarray(rows + cols), np.asarray(cols + rows)
    counts = coo_matrix(
        (np.ones(len(rows_a), dtype=np.float64), (rows_a, cols_a)), shape=(size, size)
    ).tocsr()
    counts.sum_duplicates()
    total = counts.sum()
    row_sum = np.asarray(counts.sum(axis=1)).ravel() + 1e-9
    col_sum = (np.asarray(counts.sum(axis=0)).ravel() + 1e-9) ** 0.75
    col_sum = col_sum / col_sum.sum() * total
    coo = counts.tocoo()
    pmi = np.log(coo.data * total / (row_sum[coo.row] * col_sum[coo.col]))
    keep = pmi > 0
    ppmi = coo_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=(size, size)).tocsr()
    u, s, _ = svds(ppmi, k=min(config.svd_dim, size - 2), random_state=config.seed)
    vectors = u * np.sqrt(s)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9
    token_id = {t: i for i, t in enumerate(vocab)}
    x_known = vectors[: len(known_cjk)]
    y_known = np.stack([embeddings[token_id[t]] for t in known_cjk])
    # ridge regression X W = Y (with a bias column)
    x1 = np.hstack([x_known, np.ones((len(x_known), 1))])
    w = np.linalg.solve(x1.T @ x1 + config.ridge * np.eye(x1.shape[1]), x1.T @ y_known)
    x_new = np.hstack([vectors[len(known_cjk) :], np.ones((len(new_tokens), 1))])
    mapped = x_new @ w
    # the map shrinks the vectors: bring them to the known rows' typical norm
    target = np.median(np.linalg.norm(y_known, axis=1))
    mapped *= target / (np.linalg.norm(mapped, axis=1, keepdims=True) + 1e-9)
    return mapped.astype(np.float32)


# ------------------------------------------------------------------ training


class _Batches:
    """Deterministic, resumable stream of mixed-source pair batches."""

    def __init__(self, pairs: dict[str, list], config: AdaptationConfig) -> None:
        self.sources = sorted(pairs)
        weights = [config.mix.get(s, 0.0) for s in self.sources]
        total = sum(weights) or 1.0
        self.weights = [w / total for w in weights]
        self.pairs = pairs
        self.config = config

    def batch(self, step: int) -> list[tuple[str, str]]:
        rng = random.Random(self.config.seed * 1_000_003 + step)
        chosen = rng.choices(self.sources, weights=self.weights, k=self.config.batch_pairs)
        out, seen = [], set()
        for source in chosen:
            a, b = rng.choice(self.pairs[source])
            if a in seen or b in seen:  # a duplicate would be its own in-batch negative
                continue
            seen.update((a, b))
            out.append((a, b) if rng.random() < 0.5 else (b, a))
        return out


def _mean_pool(hidden, mask):  # noqa: ANN001, ANN202
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def train(args: argparse.Namespace) -> Path:
    """Run the whole adaptation; returns the delta's path."""
    import numpy as np
    import torch
    import torch.nn.functional as F  # noqa: N812
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm
    from transformers import AutoModel, AutoTokenizer

    from components.model_prep import minilm_path

    config = AdaptationConfig(seed=args.seed, steps=args.steps)
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.set_num_threads(max(1, args.threads))
    root = args.datasets
    if not (root / "zh_pairs").is_dir():
        raise SystemExit(f"error: {root}/zh_pairs not found (set KEFU_DATASETS or --datasets)")
    base = minilm_path()
    vocab = (base / "vocab.txt").read_text(encoding="utf-8").splitlines()

    prepared = workdir / "prepared.pt"
    if prepared.is_file():
        state = torch.load(prepared)
        new_tokens, rows = state["new_tokens"], state["rows"]
        print(f"[zh] vocabulary and initial embeddings from {prepared}", file=sys.stderr)
    else:
        print("[zh] reading the Chinese corpus ...", file=sys.stderr, flush=True)
        texts = list(tqdm(corpus_texts(root), desc="corpus", unit=" texts", mininterval=2))
        new_tokens = build_vocabulary(texts, set(vocab), config)
        print(f"[zh] {len(new_tokens)} new characters", file=sys.stderr, flush=True)
        weights = AutoModel.from_pretrained(str(base)).get_input_embeddings().weight
        rows = torch.from_numpy(
            initial_rows(texts, vocab, new_tokens, weights.detach().numpy(), config)
        )
        torch.save({"new_tokens": new_tokens, "rows": rows}, prepared)

    extend_tokenizer(base, new_tokens, workdir / "tokenizer")
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(base / name, workdir / "tokenizer" / name)
    tokenizer = AutoTokenizer.from_pretrained(str(workdir / "tokenizer"))
    model = AutoModel.from_pretrained(str(base))
    old = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(old + len(new_tokens))
    with torch.no_grad():
        model.get_input_embeddings().weight[old:] = rows
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        target_modules=config.lora_targets,
        lora_dropout=0.0,
        bias="none",
    )
    model = get_peft_model(model, lora)
    embedding = model.get_input_embeddings().weight
    embedding.requires_grad_(True)
    # only the new rows learn: the gradient of the old ones is zeroed
    embedding.register_hook(lambda g: torch.cat([torch.zeros_like(g[:old]), g[old:]]))
    lora_params = [p for n, p in model.named_parameters() if "lora_" in n]
    optimizer = torch.optim.AdamW(
        [
            {"params": lora_params, "lr": config.learning_rate},
            {"params": [embedding], "lr": config.embedding_learning_rate, "weight_decay": 0.0},
        ],
        weight_decay=0.01,
    )

    def lr_lambda(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    start = 0
    checkpoint = workdir / "checkpoint.pt"
    if checkpoint.is_file():
        state = torch.load(checkpoint)
        model.load_state_dict(state["model"], strict=False)
        with torch.no_grad():
            embedding[old:] = state["new_rows"]
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = state["step"]
        print(f"[zh] resuming at step {start}", file=sys.stderr, flush=True)

    pairs = load_pairs(root, config.seed)
    print(
        "[zh] pairs: " + ", ".join(f"{k} {len(v)}" for k, v in sorted(pairs.items())),
        file=sys.stderr,
        flush=True,
    )
    batches = _Batches(pairs, config)
    model.train()
    started = time.monotonic()
    progress = tqdm(
        range(start, config.steps), initial=start, total=config.steps, desc="train", mininterval=5
    )
    losses: list[float] = []
    for step in progress:
        batch = batches.batch(step)
        texts = [a for a, _ in batch] + [b for _, b in batch]
        encoded = tokenizer(
            texts, padding=True, truncation=True, max_length=config.max_length, return_tensors="pt"
        )
        hidden = model(**encoded).last_hidden_state
        vectors = F.normalize(_mean_pool(hidden, encoded["attention_mask"]), dim=-1)
        a, b = vectors[: len(batch)], vectors[len(batch) :]
        scores = a @ b.T * config.scale
        labels = torch.arange(len(batch))
        loss = (F.cross_entropy(scores, labels) + F.cross_entropy(scores.T, labels)) / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora_params + [embedding], 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if (step + 1) % 20 == 0:
            progress.set_postfix(loss=f"{sum(losses[-20:]) / 20:.3f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            trainable = {k: v for k, v in model.state_dict().items() if "lora_" in k}
            torch.save(
                {
                    "model": trainable,
                    "new_rows": embedding[old:].detach().clone(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "step": step + 1,
                },
                checkpoint.with_suffix(".tmp"),
            )
            os.replace(checkpoint.with_suffix(".tmp"), checkpoint)
    elapsed = time.monotonic() - started
    return export(model, embedding[old:].detach(), new_tokens, config, args.out, elapsed, losses)


def export(
    model: Any,
    new_rows: Any,
    new_tokens: list[str],
    config: AdaptationConfig,
    out: Path,  # noqa: ANN001
    seconds: float,
    losses: list[float],
) -> Path:
    """Write the delta (fp16) and its checksum next to it."""
    import torch
    from safetensors.torch import save_file

    tensors = {"new_rows": new_rows.to(torch.float16).contiguous()}
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
        "new_tokens": json.dumps(new_tokens, ensure_ascii=False),
        "lora_scale": json.dumps(config.lora_alpha / config.lora_rank),
        "config": json.dumps(asdict(config), ensure_ascii=False),
        "train_seconds": json.dumps(round(seconds)),
        "final_loss": json.dumps(round(sum(losses[-50:]) / max(1, len(losses[-50:])), 4)),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata=metadata)
    digest = sha256(out)
    checksum = out.with_suffix(".sha256") if out != DELTA_FILE else CHECKSUM_FILE
    checksum.write_text(f"{digest}  {out.name}\n", encoding="utf-8")
    size = out.stat().st_size / 1e6
    print(f"[zh] wrote {out} ({size:.1f} MB, sha256 {digest[:12]}...)", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: build the vocabulary, train, export the delta."""
    parser = argparse.ArgumentParser(
        prog="python -m training zh-encoder", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--datasets", type=Path, default=None, help="default: KEFU_DATASETS")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(".cache/zh_adaptation"),
        help="checkpoints (a rerun resumes from the last)",
    )
    parser.add_argument("--out", type=Path, default=DELTA_FILE)
    parser.add_argument("--steps", type=int, default=AdaptationConfig.steps)
    parser.add_argument("--seed", type=int, default=AdaptationConfig.seed)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    args.datasets = args.datasets or datasets_dir()
    logging.basicConfig(level=logging.WARNING)
    train(args)
    return 0
