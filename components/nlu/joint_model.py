"""A joint intent + entity model on top of any Hugging Face encoder (torch).

The encoder's token states feed two heads: a BIO token-classification head for entities and,
after attention-masked mean pooling, an intent head. Entity labels are assigned from character
spans through the fast tokenizer's offset mapping, and decoded back to character spans the same
way, so offsets are exact for English and for Chinese (every CJK character is its own token).

This module knows nothing about Rasa: :mod:`components.nlu.intent_entity_classifier` adapts it.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerFast

from components.errors import ConfigError, ModelNotFoundError
from components.text import CJK

logger = logging.getLogger(__name__)

OUTSIDE = "O"


@dataclass
class EntitySpan:
    """A labelled character span (``end`` exclusive)."""

    start: int
    end: int
    label: str


@dataclass
class Example:
    """One training example."""

    text: str
    intent: str
    entities: list[EntitySpan] = field(default_factory=list)


@dataclass
class Prediction:
    """What the model says about one text."""

    intent_ranking: list[tuple[str, float]]
    entities: list[dict]


class JointIntentEntityModel(nn.Module):
    """Encoder + mean-pooled intent head + token BIO head.

    ``new_tokens`` rows of extra input embeddings serve token ids past the encoder's vocabulary
    (characters added to the tokenizer, see :meth:`JointClassifier.build`); they are trained at
    their own learning rate (:meth:`JointClassifier.fit`), the pretrained rows stay untouched.
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_intents: int,
        num_tags: int,
        dropout: float,
        new_tokens: int = 0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.intent_head = nn.Linear(hidden, num_intents)
        self.tag_head = nn.Linear(hidden, num_tags)
        self.base_vocab = encoder.get_input_embeddings().num_embeddings
        self.new_token_embeddings = nn.Embedding(new_tokens, hidden) if new_tokens else None

    def embed(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states and their attention-masked mean (the sentence embedding)."""
        if self.new_token_embeddings is None:
            inputs = {"input_ids": input_ids}
        else:
            is_new = input_ids >= self.base_vocab
            known = self.encoder.get_input_embeddings()(input_ids.clamp(max=self.base_vocab - 1))
            added = self.new_token_embeddings((input_ids - self.base_vocab).clamp(min=0))
            inputs = {"inputs_embeds": torch.where(is_new.unsqueeze(-1), added, known)}
        states = self.encoder(**inputs, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return states, pooled

    def heads(
        self, states: torch.Tensor, pooled: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Intent logits from the pooled embedding, tag logits from the token states."""
        return self.intent_head(self.dropout(pooled)), self.tag_head(self.dropout(states))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(*self.embed(input_ids, attention_mask))


def supervised_contrastive_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al., 2020) over one batch.

    Every example is pulled towards the other examples of its intent in the batch and pushed
    from the rest (cosine similarities over ``temperature``). Examples without a same-intent
    partner in the batch contribute nothing; 0 when no example has one.
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


def _set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a *fast* tokenizer (offset mappings are required for exact entity spans).

    Raises:
        ModelNotFoundError: when ``path`` holds no tokenizer.
        ConfigError: when only a slow tokenizer exists.
    """
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), use_fast=True)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"no tokenizer at {path}",
            hint="set model_name_or_path to a local Hugging Face model folder",
            path=str(path),
        ) from exc
    if not tokenizer.is_fast:
        raise ConfigError("model_name_or_path", str(path), "a model with a fast tokenizer")
    return tokenizer


class JointClassifier:
    """Trains and runs :class:`JointIntentEntityModel` with its label vocabularies.

    Args:
        tokenizer: Fast tokenizer of the encoder.
        model: The torch module.
        intents: Intent names, index-aligned with the intent head.
        tags: BIO tag names, index-aligned with the tag head.
        max_length: Token limit per message (longer messages are truncated).
        temperature: Softmax temperature for intent confidences.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerFast,
        model: JointIntentEntityModel,
        intents: list[str],
        tags: list[str],
        max_length: int = 64,
        temperature: float = 1.0,
    ) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.intents = intents
        self.tags = tags
        self.max_length = max_length
        self.temperature = temperature

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        encoder_path: str | Path,
        intents: list[str],
        entity_labels: list[str],
        max_length: int,
        dropout: float,
        seed: int,
        texts: Sequence[str] = (),
    ) -> JointClassifier:
        """Create an untrained classifier on a pretrained encoder.

        Args:
            texts: Training messages. CJK characters in them that the encoder's vocabulary
                lacks (an English encoder reads most Chinese characters as ``[UNK]``) become
                tokens of their own, with embeddings learnt in training and initialised at
                ``[UNK]``'s; without ``texts`` the vocabulary is left as is.
        """
        _set_seed(seed)
        tokenizer = load_tokenizer(encoder_path)
        missing = _unknown_characters(tokenizer, texts)
        if missing:
            tokenizer.add_tokens(missing)
            logger.info("joint_model.vocabulary_extended characters=%d", len(missing))
        try:
            encoder = AutoModel.from_pretrained(str(encoder_path))
        except OSError as exc:
            raise ModelNotFoundError(
                f"no encoder weights at {encoder_path}",
                hint="set model_name_or_path to a local Hugging Face model folder",
                path=str(encoder_path),
            ) from exc
        tags = [OUTSIDE] + [f"{p}-{label}" for label in entity_labels for p in ("B", "I")]
        model = JointIntentEntityModel(encoder, len(intents), len(tags), dropout, len(missing))
        if missing:
            with torch.no_grad():
                unk = encoder.get_input_embeddings().weight[tokenizer.unk_token_id]
                model.new_token_embeddings.weight.copy_(unk.expand(len(missing), -1))
        return cls(tokenizer, model, intents, tags, max_length)

    # ------------------------------------------------------------------ encoding
    def _encode(self, texts: Sequence[str]) -> dict:
        return self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_offsets_mapping=True,
            return_tensors="pt",
        )

    def _tag_targets(self, offsets: torch.Tensor, entities: list[EntitySpan]) -> list[int]:
        index = {t: i for i, t in enumerate(self.tags)}
        targets = []
        seen: set[int] = set()
        for start, end in offsets.tolist():
            if end <= start:
                targets.append(-100)  # special or padding token
                continue
            label = OUTSIDE
            for k, span in enumerate(entities):
                if span.start <= start < span.end:
                    prefix = "I" if k in seen else "B"
                    seen.add(k)
                    label = f"{prefix}-{span.label}"
                    break
            targets.append(index.get(label, 0))
        return targets

    # ------------------------------------------------------------------ few-shot stages
    @torch.no_grad()
    def init_intent_head(self, examples: Sequence[Example], scale: float = 10.0) -> None:
        """Start the intent head at the intents' mean embeddings (prototypes).

        Each intent's weight row is its examples' normalised mean pooled embedding times
        ``scale`` (a cosine classifier), so training starts from nearest-prototype accuracy
        instead of a random head — most of what few-shot training can reach.
        """
        self.model.eval()
        pooled = []
        for b in range(0, len(examples), 64):
            enc = self._encode([e.text for e in examples[b : b + 64]])
            pooled.append(self.model.embed(enc["input_ids"], enc["attention_mask"])[1])
        vectors = nn.functional.normalize(torch.cat(pooled), dim=-1)
        index = {name: i for i, name in enumerate(self.intents)}
        weight = self.model.intent_head.weight
        for name, row in index.items():
            members = [k for k, e in enumerate(examples) if e.intent == name]
            if members:
                mean = nn.functional.normalize(vectors[members].mean(0), dim=-1)
                weight[row] = mean.to(weight.dtype) * scale
        self.model.intent_head.bias.zero_()

    # ------------------------------------------------------------------ training
    def fit(
        self,
        examples: Sequence[Example],
        epochs: int,
        batch_size: int,
        learning_rate: float,
        head_learning_rate: float,
        seed: int,
        progress: Callable[[int, int, float], None] | None = None,
        contrastive_weight: float = 0.0,
        new_token_learning_rate: float = 5e-3,
    ) -> list[float]:
        """Fine-tune encoder and heads jointly; returns the mean loss per epoch.

        With ``contrastive_weight`` > 0 (the few-shot setting), batches are built from
        same-intent pairs and a supervised contrastive loss on the sentence embeddings is added
        to the intent and tag losses (SetFit's idea, inside the same passes: no extra encoder
        calls), which pulls 5–10 examples per intent into separable clusters.

        Embeddings of characters added to the vocabulary start from nothing, so they learn at
        ``new_token_learning_rate`` (they need far larger steps than the pretrained encoder).
        """
        _set_seed(seed)
        intent_index = {name: i for i, name in enumerate(self.intents)}
        groups: dict[str, list] = {"encoder": [], "new_token_embeddings": [], "heads": []}
        for name, param in self.model.named_parameters():
            group = name.split(".", 1)[0]
            groups[group if group in ("encoder", "new_token_embeddings") else "heads"].append(
                param
            )  # fmt: skip
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
        loss_fn = nn.CrossEntropyLoss(ignore_index=-100)
        rng = random.Random(seed)
        order = list(range(len(examples)))
        history = []
        self.model.train()
        for epoch in range(epochs):
            if contrastive_weight > 0:
                order = paired_order([e.intent for e in examples], rng)
            else:
                rng.shuffle(order)
            losses = []
            started = time.monotonic()
            for b in range(0, len(order), batch_size):
                batch = [examples[i] for i in order[b : b + batch_size]]
                enc = self._encode([e.text for e in batch])
                tag_targets = torch.tensor(
                    [
                        self._tag_targets(enc["offset_mapping"][i], e.entities)
                        for i, e in enumerate(batch)
                    ]
                )
                intent_targets = torch.tensor([intent_index[e.intent] for e in batch])
                states, pooled = self.model.embed(enc["input_ids"], enc["attention_mask"])
                intent_logits, tag_logits = self.model.heads(states, pooled)
                loss = loss_fn(intent_logits, intent_targets)
                if contrastive_weight > 0:
                    loss = loss + contrastive_weight * supervised_contrastive_loss(
                        pooled, intent_targets
                    )
                if len(self.tags) > 1:
                    loss = loss + loss_fn(
                        tag_logits.reshape(-1, len(self.tags)), tag_targets.reshape(-1)
                    )
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                losses.append(loss.item())
            mean = float(np.mean(losses)) if losses else 0.0
            history.append(mean)
            logger.debug(
                "epoch=%d loss=%.4f seconds=%.1f", epoch + 1, mean, time.monotonic() - started
            )
            if progress:
                progress(epoch + 1, epochs, mean)
        self.model.eval()
        return history

    # ------------------------------------------------------------------ calibration
    @torch.no_grad()
    def intent_logits(self, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
        """Raw intent logits (before the temperature) for ``texts``."""
        self.model.eval()
        chunks = []
        for b in range(0, len(texts), batch_size):
            enc = self._encode(list(texts[b : b + batch_size]))
            chunks.append(self.model(enc["input_ids"], enc["attention_mask"])[0])
        return torch.cat(chunks) if chunks else torch.zeros(0, len(self.intents))

    def calibrate(self, examples: Sequence[Example]) -> float:
        """Fit the softmax temperature to held-back examples (temperature scaling).

        The temperature minimising the negative log-likelihood of the true intents is found by
        a golden-section search over log T in [0.05, 20]; it rescales confidences without
        changing any ranking, so ``FallbackClassifier`` thresholds become meaningful.

        Returns:
            The fitted temperature (also stored on the classifier and persisted).
        """
        known = [e for e in examples if e.intent in self.intents]
        if not known:
            return self.temperature
        logits = self.intent_logits([e.text for e in known])
        targets = torch.tensor([self.intents.index(e.intent) for e in known])

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
        self.temperature = math.exp((lo + hi) / 2)
        return self.temperature

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict(self, texts: Sequence[str], batch_size: int = 32) -> list[Prediction]:
        """Rank intents and extract entities for each text (batched)."""
        self.model.eval()
        results: list[Prediction] = []
        for b in range(0, len(texts), batch_size):
            chunk = list(texts[b : b + batch_size])
            enc = self._encode(chunk)
            intent_logits, tag_logits = self.model(enc["input_ids"], enc["attention_mask"])
            intent_probs = torch.softmax(intent_logits / self.temperature, dim=-1)
            tag_probs = torch.softmax(tag_logits, dim=-1)
            for i, text in enumerate(chunk):
                probs = intent_probs[i].tolist()
                ranking = sorted(zip(self.intents, probs, strict=True), key=lambda x: -x[1])
                entities = self._decode(text, enc["offset_mapping"][i].tolist(), tag_probs[i])
                results.append(Prediction(ranking, entities))
        return results

    def _decode(self, text: str, offsets: list[list[int]], probs: torch.Tensor) -> list[dict]:
        if len(self.tags) == 1:
            return []
        best = probs.argmax(-1).tolist()
        conf = probs.max(-1).values.tolist()
        spans: list[dict] = []
        current: dict | None = None
        for (start, end), tag_id, c in zip(offsets, best, conf, strict=True):
            if end <= start:
                continue
            tag = self.tags[tag_id]
            if tag == OUTSIDE:
                current = None
                continue
            prefix, label = tag.split("-", 1)
            if (
                current is not None
                and current["entity"] == label
                and (prefix == "I" or (start == current["end"] and _inside_word(text, start)))
            ):
                current["end"] = end
                current["_conf"].append(c)
                continue
            current = {"entity": label, "start": start, "end": end, "_conf": [c]}
            spans.append(current)
        entities = []
        for span in spans:
            start, end = _expand_to_word(text, span["start"], span["end"])
            entities.append(
                {
                    "entity": span["entity"],
                    "start": start,
                    "end": end,
                    "value": text[start:end],
                    "confidence_entity": float(np.mean(span["_conf"])),
                }
            )
        return entities

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        """Write encoder, tokenizer, heads and label vocabularies into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        self.model.encoder.save_pretrained(directory / "encoder", safe_serialization=True)
        self.tokenizer.save_pretrained(directory / "encoder")
        heads = {k: v for k, v in self.model.state_dict().items() if not k.startswith("encoder.")}
        torch.save(heads, directory / "heads.pt")
        meta = {
            "intents": self.intents,
            "tags": self.tags,
            "max_length": self.max_length,
            "temperature": self.temperature,
            "new_tokens": (
                0
                if self.model.new_token_embeddings is None
                else self.model.new_token_embeddings.num_embeddings
            ),
        }
        (directory / "labels.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, directory: Path) -> JointClassifier:
        """Inverse of :meth:`save`."""
        meta = json.loads((directory / "labels.json").read_text())
        tokenizer = load_tokenizer(directory / "encoder")
        config = AutoConfig.from_pretrained(str(directory / "encoder"))
        encoder = AutoModel.from_pretrained(str(directory / "encoder"), config=config)
        model = JointIntentEntityModel(
            encoder, len(meta["intents"]), len(meta["tags"]), 0.0, meta.get("new_tokens", 0)
        )
        heads = torch.load(directory / "heads.pt", map_location="cpu", weights_only=True)
        result = model.load_state_dict(heads, strict=False)
        missing = [k for k in result.missing_keys if not k.startswith("encoder.")]
        if missing or result.unexpected_keys:
            raise ModelNotFoundError(
                f"persisted heads do not fit the model: missing={missing} "
                f"unexpected={result.unexpected_keys}",
                hint="retrain the model",
                path=str(directory),
            )
        model.eval()
        return cls(
            tokenizer,
            model,
            meta["intents"],
            meta["tags"],
            meta["max_length"],
            meta.get("temperature", 1.0),
        )


def _unknown_characters(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> list[str]:
    """CJK ideographs of ``texts`` that ``tokenizer`` turns into its unknown token, sorted.

    Only ideographs (the project's :data:`components.text.CJK`): BERT-style tokenizers
    split them into single characters anyway, so adding one changes no other token's split (an
    added kana, hangul or Latin letter would cut words apart).
    """
    unk = tokenizer.unk_token_id
    if unk is None:
        return []
    seen = sorted({ch for text in texts for ch in CJK.findall(text)})
    if not seen:
        return []
    # tokenise each character as the model would (a SentencePiece vocabulary may know it only as
    # "▁字", which convert_tokens_to_ids would miss); only pure unknowns are added
    pieces = tokenizer(seen, add_special_tokens=False)["input_ids"]
    return [ch for ch, ids in zip(seen, pieces, strict=True) if ids == [unk]]


def _expand_to_word(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow a span that stops inside an ASCII word to the whole word (``KF10|0234``)."""
    while _inside_word(text, start):
        start -= 1
    while _inside_word(text, end):
        end += 1
    return start, end


def _inside_word(text: str, position: int) -> bool:
    """Whether ``position`` continues a Latin/digit word (a sub-word piece, not a new entity).

    Chinese characters are words of their own: a ``B-`` tag right after an entity of the same
    type starts a new one there (两个相邻的城市 stay two entities).
    """
    if position <= 0 or position >= len(text):
        return False
    return all(ch.isascii() and ch.isalnum() for ch in text[position - 1 : position + 1])
