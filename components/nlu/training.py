"""Fine-tuning the joint classifier: few-shot head init, the training loop and calibration.

:func:`train` is the whole recipe the Rasa component runs (hold back a calibration slice,
start the intent head at the intents' prototypes, fine-tune, fit the softmax temperature);
its steps are public for experiments and tests.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import torch
from torch import nn

from components.bio import IGNORE, EntitySpan, tag_ids
from components.nlu.joint_model import LARGE_VOCABULARY, JointClassifier, set_seed
from components.nlu.persistence import from_pretrained
from components.nlu.progress import ProgressReporter

logger = logging.getLogger(__name__)


@dataclass
class Example:
    """One training example."""

    text: str
    intent: str
    entities: list[EntitySpan] = field(default_factory=list)


class _HasIntent(Protocol):
    intent: str


_E = TypeVar("_E", bound=_HasIntent)


def supervised_contrastive_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al., 2020) over one batch.

    Every example is pulled towards the other examples of its intent in the batch and pushed
    from the rest (cosine similarities over ``temperature``).

    Args:
        embeddings: Sentence embeddings, ``(batch, hidden)``.
        labels: Intent ids, ``(batch,)``.
        temperature: Scale of the cosine similarities.

    Returns:
        The mean loss over examples with a same-intent partner in the batch (the others
        contribute nothing); 0 when no example has one.
    """
    z = nn.functional.normalize(embeddings, dim=-1)
    logits = z @ z.T / temperature
    self_mask = torch.eye(len(labels), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    positives = (labels.unsqueeze(0) == labels.unsqueeze(1)) & ~self_mask
    counts = positives.sum(1)
    anchors = counts > 0
    if not anchors.any():
        return embeddings.sum() * 0.0
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    log_prob = log_prob.masked_fill(~positives, 0.0)
    return -(log_prob.sum(1)[anchors] / counts[anchors]).mean()


def paired_order(intents: Sequence[str], rng: random.Random) -> list[int]:
    """Example indices shuffled so that examples of one intent come in adjacent pairs.

    A batch of such an order holds same-intent pairs for the contrastive loss whatever its
    size; odd leftovers are spread in at random places.

    Args:
        intents: The intent of each example.
        rng: Source of the shuffles.

    Returns:
        A permutation of ``range(len(intents))``.
    """
    by_intent: dict[str, list[int]] = {}
    for i, intent in enumerate(intents):
        by_intent.setdefault(intent, []).append(i)
    chunks: list[list[int]] = []
    for name in sorted(by_intent):
        members = by_intent[name][:]
        rng.shuffle(members)
        chunks += [members[k : k + 2] for k in range(0, len(members), 2)]
    rng.shuffle(chunks)
    return [i for chunk in chunks for i in chunk]


def resolve_contrastive_weight(examples: Sequence[_HasIntent], configured: float | None) -> float:
    """The contrastive loss weight to train with.

    Args:
        examples: The training examples.
        configured: A fixed weight, or ``None`` for automatic.

    Returns:
        ``configured``; for ``None``, 1.0 when the median intent has at most 16 examples
        (few-shot data) and 0 otherwise (also 0 with fewer than two intents).
    """
    if configured is not None:
        return float(configured)
    counts = sorted(Counter(e.intent for e in examples).values())
    if len(counts) < 2:
        return 0.0
    return 1.0 if counts[len(counts) // 2] <= 16 else 0.0


def calibration_split(
    examples: Sequence[_E], fraction: float, seed: int, min_per_intent: int = 5
) -> tuple[list[_E], list[_E]]:
    """Hold back ``fraction`` of each intent's examples (intents with enough of them).

    Args:
        examples: The training examples.
        fraction: Share of each intent's examples to hold back.
        seed: Seed of the draw (the split is deterministic for a seed).
        min_per_intent: Intents with fewer examples give none.

    Returns:
        ``(train, held_back)``; nothing is held back when the fraction is 0 or fewer than 10
        examples would be held back in total (too few to fit).
    """
    if fraction <= 0:
        return list(examples), []
    rng = random.Random(seed)
    by_intent: dict[str, list[int]] = {}
    for i, example in enumerate(examples):
        by_intent.setdefault(example.intent, []).append(i)
    held: set[int] = set()
    for indices in by_intent.values():
        if len(indices) >= min_per_intent:
            held.update(rng.sample(indices, max(1, round(fraction * len(indices)))))
    if len(held) < 10:
        return list(examples), []
    train_part = [e for i, e in enumerate(examples) if i not in held]
    return train_part, [examples[i] for i in sorted(held)]


@torch.no_grad()
def init_intent_head(
    classifier: JointClassifier, examples: Sequence[Example], scale: float = 10.0
) -> None:
    """Start the intent head at the intents' mean embeddings (prototypes).

    Each intent's weight row is its examples' normalised mean pooled embedding times
    ``scale`` (a cosine classifier), so training starts from nearest-prototype accuracy
    instead of a random head — most of what few-shot training can reach.

    Args:
        classifier: The untrained classifier; its intent head is overwritten.
        examples: Training examples (intents without any keep their rows).
        scale: Length of the weight rows (the inverse softmax temperature).
    """
    model = classifier.model
    model.eval()
    pooled = []
    for b in range(0, len(examples), 64):
        enc = classifier.encode([e.text for e in examples[b : b + 64]])
        pooled.append(model.embed(enc["input_ids"], enc["attention_mask"])[1])
    vectors = nn.functional.normalize(torch.cat(pooled), dim=-1)
    index = {name: i for i, name in enumerate(classifier.intents)}
    weight = model.intent_head.weight
    for name, row in index.items():
        members = [k for k, e in enumerate(examples) if e.intent == name]
        if members:
            mean = nn.functional.normalize(vectors[members].mean(0), dim=-1)
            weight[row] = mean.to(weight.dtype) * scale
    model.intent_head.bias.zero_()


def freeze_lower_layers(classifier: JointClassifier, layers: int) -> int:
    """Keep the embeddings and the ``layers`` lowest encoder layers at their pretrained weights.

    A large word-embedding table (more than :data:`LARGE_VOCABULARY` rows) is frozen whatever
    ``layers`` says: it gets no gradient and no optimiser state. With ``layers`` > 0 the whole
    embedding block (word, position and type embeddings, their LayerNorm) is frozen too, and
    backpropagation stops above the frozen layers (a fine-tuning step of multilingual-e5 with
    its 6 lower layers frozen costs about what one of the 6-layer MiniLM costs).

    Args:
        classifier: The untrained classifier.
        layers: Lower encoder layers to freeze (capped at the encoder's depth); 0 = none.

    Returns:
        The number of weights left to train in the encoder.
    """
    encoder = classifier.model.encoder
    word = encoder.get_input_embeddings()
    if word.num_embeddings > LARGE_VOCABULARY:
        word.weight.requires_grad_(False)
    if layers > 0:
        blocks = getattr(getattr(encoder, "encoder", None), "layer", None)
        embeddings = getattr(encoder, "embeddings", None)
        if blocks is None or embeddings is None:
            logger.warning("intent_classifier.cannot_freeze model=%s", type(encoder).__name__)
        else:
            for module in [embeddings, *list(blocks)[:layers]]:
                for param in module.parameters():
                    param.requires_grad_(False)
    return sum(p.numel() for p in encoder.parameters() if p.requires_grad)


def fit(
    classifier: JointClassifier,
    examples: Sequence[Example],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    head_learning_rate: float,
    seed: int,
    contrastive_weight: float = 0.0,
    new_token_learning_rate: float = 5e-3,
    reporter: ProgressReporter | None = None,
) -> list[float]:
    """Fine-tune encoder and heads jointly (AdamW, linear warm-up and decay).

    With ``contrastive_weight`` > 0 (the few-shot setting), batches are built from
    same-intent pairs and a supervised contrastive loss on the sentence embeddings is added
    to the intent and tag losses (SetFit's idea, inside the same passes: no extra encoder
    calls), which pulls 5–10 examples per intent into separable clusters.

    Args:
        classifier: The classifier to train (its model ends in evaluation mode).
        examples: Training examples; their intents must be among the classifier's.
        epochs: Passes over the examples.
        batch_size: Examples per optimisation step.
        learning_rate: Learning rate of the encoder.
        head_learning_rate: Learning rate of the intent and tag heads.
        seed: Seed for dropout and shuffling (training is deterministic for a seed).
        contrastive_weight: Weight of :func:`supervised_contrastive_loss`; 0 turns it off.
        new_token_learning_rate: Learning rate of the embeddings of characters added to the
            vocabulary; they start from nothing, so they need far larger steps than the
            pretrained encoder.
        reporter: Told of every step and epoch (a progress bar with an ETA, see
            :class:`components.nlu.progress.TrainingProgress`); closed when training ends.

    Returns:
        The mean loss of each epoch.
    """
    set_seed(seed)
    model = classifier.model
    intent_index = {name: i for i, name in enumerate(classifier.intents)}
    groups: dict[str, list] = {"encoder": [], "new_token_embeddings": [], "heads": []}
    for name, param in model.named_parameters():
        if not param.requires_grad:  # frozen (see freeze_lower_layers): no optimiser state
            continue
        group = name.split(".", 1)[0]
        groups[group if group in ("encoder", "new_token_embeddings") else "heads"].append(param)
    trainable = [p for group in groups.values() for p in group]
    optimizer = torch.optim.AdamW(
        [
            {"params": groups["encoder"], "lr": learning_rate},
            {"params": groups["heads"], "lr": head_learning_rate},
            {"params": groups["new_token_embeddings"], "lr": new_token_learning_rate},
        ],
        weight_decay=0.01,
    )
    steps_per_epoch = math.ceil(len(examples) / batch_size)
    total = max(1, steps_per_epoch * epochs)
    warmup = max(1, total // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))),
    )
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)
    rng = random.Random(seed)
    order = list(range(len(examples)))
    history: list[float] = []
    if reporter is not None:
        reporter.start(epochs, steps_per_epoch)
    model.train()
    try:
        for epoch in range(epochs):
            if contrastive_weight > 0:
                order = paired_order([e.intent for e in examples], rng)
            else:
                rng.shuffle(order)
            losses = []
            started = time.monotonic()
            for b in range(0, len(order), batch_size):
                batch = [examples[i] for i in order[b : b + batch_size]]
                loss = _batch_loss(classifier, batch, intent_index, loss_fn, contrastive_weight)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                scheduler.step()
                losses.append(loss.item())
                if reporter is not None:
                    reporter.step(losses[-1])
            mean = float(np.mean(losses)) if losses else 0.0
            history.append(mean)
            seconds = time.monotonic() - started
            logger.debug("epoch=%d loss=%.4f seconds=%.1f", epoch + 1, mean, seconds)
            if reporter is not None:
                reporter.epoch_end(epoch + 1, mean)
    finally:
        if reporter is not None:
            reporter.close()
    model.eval()
    return history


def _batch_loss(
    classifier: JointClassifier,
    batch: Sequence[Example],
    intent_index: dict[str, int],
    loss_fn: nn.Module,
    contrastive_weight: float,
) -> torch.Tensor:
    """The training loss of one batch: intents, BIO tags and (optionally) contrastive."""
    model, tags = classifier.model, classifier.tags
    enc = classifier.encode([e.text for e in batch])
    tag_targets = torch.tensor(
        [tag_ids(enc["offset_mapping"][i].tolist(), e.entities, tags) for i, e in enumerate(batch)]
    )
    intent_targets = torch.tensor([intent_index[e.intent] for e in batch])
    states, pooled = model.embed(enc["input_ids"], enc["attention_mask"])
    intent_logits, tag_logits = model.heads(states, pooled)
    loss = loss_fn(intent_logits, intent_targets)
    if contrastive_weight > 0:
        loss = loss + contrastive_weight * supervised_contrastive_loss(pooled, intent_targets)
    if len(tags) > 1:
        loss = loss + loss_fn(tag_logits.reshape(-1, len(tags)), tag_targets.reshape(-1))
    return loss


def calibrate(classifier: JointClassifier, examples: Sequence[Example]) -> float:
    """Fit the softmax temperature to held-back examples (temperature scaling).

    The temperature minimising the negative log-likelihood of the true intents is found by
    a golden-section search over log T in [0.05, 20]; it rescales confidences without
    changing any ranking, so ``FallbackClassifier`` thresholds become meaningful.

    Args:
        classifier: The trained classifier; its ``temperature`` is set.
        examples: Examples not trained on; those of unknown intents are ignored.

    Returns:
        The fitted temperature (the classifier's unchanged one without usable examples).
    """
    known = [e for e in examples if e.intent in classifier.intents]
    if not known:
        return classifier.temperature
    logits = classifier.intent_logits([e.text for e in known])
    targets = torch.tensor([classifier.intents.index(e.intent) for e in known])

    def nll(log_t: float) -> float:
        return float(nn.functional.cross_entropy(logits / math.exp(log_t), targets))

    lo, hi = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    for _ in range(60):
        if nll(a) < nll(b):
            hi, b = b, a
            a = hi - ratio * (hi - lo)
        else:
            lo, a = a, b
            b = lo + ratio * (hi - lo)
    classifier.temperature = math.exp((lo + hi) / 2)
    return classifier.temperature


#: Lower layers of multilingual-e5-small (12 layers) frozen by default.
E5_FROZEN_LAYERS = 6


def resolve_encoder_options(
    encoder_path: str | Path, frozen_layers: int | None, quantize: bool | None
) -> tuple[int, bool]:
    """The frozen layers and the inference quantisation for an encoder (``None`` = automatic).

    Automatic: for multilingual-e5 (:func:`components.model_prep.is_e5`; 12 layers, the
    encoder of Chinese data) the :data:`E5_FROZEN_LAYERS` lower layers are frozen and the
    model is int8-quantised at load; for any other encoder (MiniLM) nothing is frozen and
    nothing is quantised.

    Args:
        encoder_path: The encoder folder to fine-tune.
        frozen_layers: A fixed number of layers, or ``None``.
        quantize: A fixed choice, or ``None``.

    Returns:
        ``(frozen_layers, quantize)``.
    """
    from components.model_prep import is_e5

    e5 = is_e5(encoder_path)
    if frozen_layers is None:
        frozen_layers = E5_FROZEN_LAYERS if e5 else 0
    if quantize is None:
        quantize = e5
    return frozen_layers, quantize


def train(
    examples: Sequence[Example],
    encoder_path: str | Path,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    head_learning_rate: float,
    new_token_learning_rate: float,
    max_length: int,
    dropout: float,
    seed: int,
    calibration_fraction: float,
    contrastive_weight: float | None,
    prototype_head_init: bool,
    extend_vocabulary: bool,
    frozen_layers: int | None = None,
    quantize: bool | None = None,
    reporter: ProgressReporter | None = None,
) -> JointClassifier:
    """Create a classifier on a pretrained encoder, fine-tune it and calibrate it.

    Args:
        examples: Training examples (at least one).
        encoder_path: A local Hugging Face encoder folder.
        epochs: Passes over the training data.
        batch_size: Examples per optimisation step.
        learning_rate: Learning rate of the encoder.
        head_learning_rate: Learning rate of the intent and tag heads.
        new_token_learning_rate: Learning rate of added characters' embeddings.
        max_length: Token limit per message.
        dropout: Dropout before both heads during training.
        seed: Seed of weight init, the calibration split, shuffling and dropout.
        calibration_fraction: Share of each intent's examples held back to fit the
            temperature (see :func:`calibration_split`); 0 turns calibration off.
        contrastive_weight: Weight of the contrastive loss; ``None`` = automatic (see
            :func:`resolve_contrastive_weight`).
        prototype_head_init: Start the intent head at the intents' prototypes.
        extend_vocabulary: Add CJK characters the encoder does not know as new tokens
            (WordPiece encoders only, see :func:`components.nlu.persistence.unknown_characters`).
        frozen_layers: Lower encoder layers kept at their pretrained weights (see
            :func:`freeze_lower_layers`); ``None`` = automatic (:func:`resolve_encoder_options`).
        quantize: Whether the saved model is int8-quantised when loaded for inference;
            ``None`` = automatic.
        reporter: Told of every training step and epoch (see :func:`fit`).

    Returns:
        The trained classifier.
    """
    intents = sorted({e.intent for e in examples})
    labels = sorted({s.label for e in examples for s in e.entities})
    classifier = from_pretrained(
        encoder_path,
        intents,
        labels,
        max_length,
        dropout,
        seed,
        texts=[e.text for e in examples] if extend_vocabulary else (),
    )
    frozen_layers, classifier.quantize = resolve_encoder_options(
        encoder_path, frozen_layers, quantize
    )
    trainable = freeze_lower_layers(classifier, frozen_layers)
    started = time.monotonic()
    train_part, held_back = calibration_split(examples, calibration_fraction, seed)
    if prototype_head_init:
        init_intent_head(classifier, train_part)
    fit(
        classifier,
        train_part,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        head_learning_rate=head_learning_rate,
        new_token_learning_rate=new_token_learning_rate,
        seed=seed,
        contrastive_weight=resolve_contrastive_weight(train_part, contrastive_weight),
        reporter=reporter,
    )
    if held_back:
        calibrate(classifier, held_back)
    logger.info(
        "intent_classifier.trained examples=%d held_back=%d temperature=%.3f intents=%d "
        "entity_labels=%d encoder=%s frozen_layers=%d trainable=%d seconds=%.1f",
        len(train_part),
        len(held_back),
        classifier.temperature,
        len(intents),
        len(labels),
        Path(encoder_path).name,
        frozen_layers,
        trainable,
        time.monotonic() - started,
    )
    return classifier
