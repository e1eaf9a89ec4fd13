"""Train the name/address tagger and write the committed model file.

    python -m training tagger            # the shipped model (~10 min, 2 cores)
    python -m training tagger --english 200 --chinese 100 --epochs 1 \
        --out /tmp/tagger.safetensors    # a tiny one, for a smoke test

Data: :func:`training.privacy.tagger_data.build_corpus` (generated messages, CLUENER train,
real negatives) from ``KEFU_DATASETS``. 4 % of it is held back; after each epoch the span F1 on
that slice is printed, and the decision threshold is the one with the best F2 on it (recall
weighs more than precision for masking). Deterministic for a seed on one machine.
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from components.privacy.tagger import (
    CHECKSUM_FILE,
    MODEL_FILE,
    PIITagger,
    TaggerConfig,
)
from training.privacy.tagger_data import Sample, build_corpus

logger = logging.getLogger(__name__)


def vocabulary(samples: Sequence[Sample], min_count: int = 2) -> list[str]:
    """Characters (folded, lower-cased, not whitespace) seen at least ``min_count`` times."""
    from components.text import fold_for_model

    counts = Counter(ch.lower() for s in samples for ch in fold_for_model(s.text))
    return sorted(ch for ch, n in counts.items() if n >= min_count and not ch.isspace())


def pretrained_rows(chars: Sequence[str], dim: int, encoder: Path):  # noqa: ANN201 - a tensor
    """Starting embeddings for ``chars`` from the encoder's input embeddings.

    Each character that is a whole piece of the encoder's vocabulary takes that piece's row
    (384 wide; multilingual-e5-small's vocabulary has most Chinese characters); the rows are
    reduced to ``dim`` by PCA and scaled to unit variance, like a fresh embedding. Characters
    the encoder splits or does not know start at zero.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(encoder))
    table = AutoModel.from_pretrained(str(encoder)).get_input_embeddings().weight.detach()
    vocabulary = tokenizer.get_vocab()
    ids = [[vocabulary[ch]] if ch in vocabulary else [] for ch in chars]
    known = [
        i for i, piece in enumerate(ids) if len(piece) == 1 and piece[0] != tokenizer.unk_token_id
    ]
    rows = torch.zeros(len(chars), dim)
    if len(known) > dim:
        vectors = table[[ids[i][0] for i in known]]
        vectors = vectors - vectors.mean(0)
        _, _, basis = torch.pca_lowrank(vectors, q=dim, center=False)
        reduced = vectors @ basis[:, :dim]
        rows[known] = reduced / reduced.std(0).clamp(min=1e-6)
    return rows, len(known)


def targets(tagger: PIITagger, samples: Sequence[Sample], width: int):  # noqa: ANN201 - a tensor
    """Tag ids per character, padded to ``width`` (ignored: whitespace and padding)."""
    import torch

    from components.bio import EntitySpan, tag_ids

    tags = tagger.config.tags
    out = torch.full((len(samples), width), -100, dtype=torch.long)
    for i, s in enumerate(samples):
        ids = tag_ids(
            tagger.offsets(s.text), [EntitySpan(a, b, label) for label, a, b in s.spans], tags
        )
        out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def span_f(gold: Sequence[Sample], found: Sequence[list], label: str | None = None) -> dict:
    """Exact-span precision, recall, F1 and F2 (one label, or all)."""
    tp = fp = fn = 0
    for sample, spans in zip(gold, found, strict=True):
        g = {(lab, s, e) for lab, s, e in sample.spans if label in (None, lab)}
        p = {(lab, s, e) for lab, s, e, *_ in spans if label in (None, lab)}
        tp += len(g & p)
        fp += len(p - g)
        fn += len(g - p)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    f2 = 5 * p * r / (4 * p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1, "f2": f2, "support": tp + fn}


def choose_threshold(tagger: PIITagger, held_back: Sequence[Sample]) -> float:
    """The threshold (0.30–0.90, step 0.05) with the best span F2 on ``held_back``."""
    saved = tagger.config.threshold
    tagger.config.threshold = 0.0
    found = tagger.find([s.text for s in held_back])
    tagger.config.threshold = saved
    best, best_f2 = saved, -1.0
    for step in range(13):
        threshold = 0.30 + 0.05 * step
        kept = [[sp for sp in spans if sp[3] >= threshold] for spans in found]
        f2 = span_f(held_back, kept)["f2"]
        if f2 > best_f2 + 1e-9:
            best, best_f2 = round(threshold, 2), f2
    return best


def train(
    samples: Sequence[Sample],
    config: TaggerConfig,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    held_back: Sequence[Sample] = (),
    encoder: Path | None = None,
) -> tuple[PIITagger, list[float]]:
    """Train a tagger on ``samples``; returns it (evaluation mode) and each epoch's mean loss.

    Batches hold texts of similar length (sorted within shuffled pools of 50 batches), so
    padding stays small; AdamW with a linear warm-up over the first 5 % of steps and a cosine
    decay; gradients clipped at 1. With ``encoder`` (the multilingual encoder's folder), character
    embeddings start from its rows (:func:`pretrained_rows`).
    """
    import torch
    from tqdm import tqdm

    torch.manual_seed(seed)
    rng = random.Random(seed)
    config.chars = vocabulary(samples)
    tagger = PIITagger(config)
    module = tagger.module
    if encoder is not None:
        rows, known = pretrained_rows(config.chars, config.char_dim, encoder)
        with torch.no_grad():
            module.chars.weight[2:] = rows
        print(
            f"character embeddings: {known} of {len(config.chars)} from {encoder.name}",
            file=sys.stderr,
        )
    optimizer = torch.optim.AdamW(module.parameters(), lr=learning_rate, weight_decay=1e-4)
    limit = config.max_chars
    usable = [s for s in samples if 0 < len(s.text) <= limit]
    steps_per_epoch = math.ceil(len(usable) / batch_size)
    total = max(1, steps_per_epoch * epochs)
    warmup = max(1, total // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))),
    )
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
    history: list[float] = []
    for epoch in range(epochs):
        order = list(range(len(usable)))
        rng.shuffle(order)
        batches = []
        pool = batch_size * 50
        for p in range(0, len(order), pool):
            chunk = sorted(order[p : p + pool], key=lambda i: len(usable[i].text))
            batches += [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        module.train()
        losses = []
        started = time.monotonic()
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", unit=" batches", mininterval=2)
        for batch in bar:
            chunk = [usable[i] for i in batch]
            feats = tagger.batch([s.text for s in chunk])
            gold = targets(tagger, chunk, feats.shape[-1])
            logits = module(feats)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), gold.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if len(losses) % 20 == 0:
                bar.set_postfix(loss=f"{sum(losses[-20:]) / 20:.4f}")
        module.eval()
        history.append(sum(losses) / max(1, len(losses)))
        line = f"epoch {epoch + 1}: loss {history[-1]:.4f} ({time.monotonic() - started:.0f} s)"
        if held_back:
            found = tagger.find([s.text for s in held_back])
            scores = {lab: span_f(held_back, found, lab)["f1"] for lab in config.labels}
            line += " held-back F1 " + " ".join(f"{k} {v:.3f}" for k, v in scores.items())
        print(line, file=sys.stderr, flush=True)
    return tagger, history


def main(argv: list[str] | None = None) -> int:
    """Command line: build the corpus, train, choose the threshold, save, write the checksum."""
    from training.paths import datasets_dir

    parser = argparse.ArgumentParser(
        prog="python -m training tagger", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--english", type=int, default=16000, help="generated English messages")
    parser.add_argument("--chinese", type=int, default=6000, help="generated Chinese messages")
    parser.add_argument("--negatives", type=int, default=3000, help="real messages per set")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--out", type=Path, default=MODEL_FILE)
    parser.add_argument(
        "--no-pretrained-chars",
        action="store_true",
        help="start character embeddings at random instead of the multilingual encoder's rows",
    )
    args = parser.parse_args(argv)
    datasets = datasets_dir()
    missing = [
        p
        for p in (
            datasets / "cluener2020" / "train.jsonl",
            datasets / "banking77" / "train.csv",
            datasets / "cic" / "train.jsonl",
        )
        if not p.is_file()
    ]
    if missing:
        print(
            f"error: missing {', '.join(map(str, missing))}: set KEFU_DATASETS to the public "
            "datasets folder",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    samples = build_corpus(
        datasets,
        english=args.english,
        chinese=args.chinese,
        negatives=args.negatives,
        seed=args.seed,
    )
    cut = max(1, len(samples) // 25)
    held_back, train_part = samples[:cut], samples[cut:]
    print(
        f"corpus: {len(train_part)} training texts, {len(held_back)} held back "
        f"({time.monotonic() - started:.0f} s)",
        file=sys.stderr,
    )
    encoder = None
    if not args.no_pretrained_chars:
        from components.model_prep import resolve_zh_encoder

        found = resolve_zh_encoder("auto")
        encoder = Path(found) if found else None
    tagger, _ = train(
        train_part,
        TaggerConfig(),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        held_back=held_back,
        encoder=encoder,
    )
    tagger.config.threshold = choose_threshold(tagger, held_back)
    tagger.save(args.out)
    if args.out == MODEL_FILE:
        from components.checksums import write_checksum

        write_checksum(MODEL_FILE, CHECKSUM_FILE)
    found = tagger.find([s.text for s in held_back])
    print(
        f"saved {args.out} ({args.out.stat().st_size / 1e6:.1f} MB), threshold "
        f"{tagger.config.threshold}, held-back F1 all {span_f(held_back, found)['f1']:.3f}, "
        f"{time.monotonic() - started:.0f} s in all",
        file=sys.stderr,
    )
    return 0
