"""Rasa graph component: a fine-tuned transformer that predicts intents and entities.

Register it in ``config.yml`` as
``components.nlu.intent_entity_classifier.TransformerIntentEntityClassifier``.
It fine-tunes a local Hugging Face encoder (default: the bundled all-MiniLM-L6-v2) with an
intent head and a BIO entity head (see :mod:`components.nlu.joint_model`), and needs no Rasa
tokenizer or featurizer in front of it.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_GROUP,
    ENTITY_ATTRIBUTE_ROLE,
    INTENT,
    INTENT_RANKING_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.errors import ConfigError
from components.text import WORD_TOKENS

logger = logging.getLogger(__name__)


def word_tokens(text: str) -> list[Token]:
    """Words (each Chinese character alone) and punctuation, as Rasa tokens with offsets."""
    return [Token(m.group(0), m.start(), m.end()) for m in WORD_TOKENS.finditer(text)]


_PART = "\x1f"  # joins entity, role and group into one tag label (never in entity names)


def entity_label(entity: dict[str, Any]) -> str:
    """One tag label for an annotated entity, its role and group included (``city`` + ``from``)."""
    label = str(entity["entity"])
    if entity.get(ENTITY_ATTRIBUTE_ROLE):
        label += f"{_PART}role={entity[ENTITY_ATTRIBUTE_ROLE]}"
    if entity.get(ENTITY_ATTRIBUTE_GROUP):
        label += f"{_PART}group={entity[ENTITY_ATTRIBUTE_GROUP]}"
    return label


def split_entity_label(entity: dict[str, Any]) -> dict[str, Any]:
    """The predicted entity with its label split back into ``entity``, ``role`` and ``group``."""
    name, *parts = str(entity["entity"]).split(_PART)
    out = {**entity, "entity": name}
    for part in parts:
        key, _, value = part.partition("=")
        out[ENTITY_ATTRIBUTE_ROLE if key == "role" else ENTITY_ATTRIBUTE_GROUP] = value
    return out


@DefaultV1Recipe.register(
    [
        DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER,
        DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR,
    ],
    is_trainable=True,
)
class TransformerIntentEntityClassifier(GraphComponent, IntentClassifier, EntityExtractorMixin):
    """Joint intent classification and entity extraction with a fine-tuned encoder.

    At inference a failure on a batch (or a missing trained model) is logged as a warning and
    the messages get no intent (confidence 0) and no entities, so ``FallbackClassifier`` answers,
    instead of crashing.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Default configuration."""
        return {
            # Local Hugging Face encoder folder; None = bundled all-MiniLM-L6-v2.
            "model_name_or_path": None,
            # Passes over the training data.
            "epochs": 15,
            # Examples per optimisation step.
            "batch_size": 16,
            # Learning rate of the encoder weights.
            "learning_rate": 5e-5,
            # Learning rate of the freshly initialised intent and entity heads.
            "head_learning_rate": 1e-3,
            # Token limit per message; longer messages are truncated.
            "max_length": 64,
            # Dropout before both heads during training.
            "dropout": 0.1,
            # Seed for weight init, shuffling and dropout (training is deterministic).
            "random_seed": 42,
            # How many intents to report in intent_ranking.
            "ranking_length": 10,
            # Entities below this confidence are dropped.
            "entity_confidence_threshold": 0.5,
            # Show a progress line per epoch on stderr while training.
            "show_progress": True,
            # Share of each intent's examples held back to calibrate confidences (temperature
            # scaling); 0 turns calibration off. Intents with < 5 examples give none.
            "calibration_fraction": 0.1,
            # Weight of the supervised contrastive loss on same-intent pairs in each batch
            # (SetFit-style, for few-shot data); None = auto: 1.0 when the median intent has
            # <= 16 examples, else 0 (off).
            "contrastive_weight": None,
            # Start the intent head at each intent's mean embedding instead of random weights.
            "prototype_head_init": True,
            # Learn embeddings for CJK characters of the training data that the encoder's
            # vocabulary lacks (an English encoder reads most Chinese as [UNK]).
            "extend_vocabulary": True,
            # Learning rate of those characters' embeddings (they start from nothing).
            "new_token_learning_rate": 5e-3,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        classifier: Any | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._validate_config(self._config)
        self._model_storage = model_storage
        self._resource = resource
        self._execution_context = execution_context
        self._classifier = classifier

    @classmethod
    def _validate_config(cls, config: dict[str, Any]) -> None:
        name = cls.__name__
        positive_ints = ("epochs", "batch_size", "max_length", "ranking_length")
        for key in positive_ints:
            value = config[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(key, value, "a positive integer", component=name)
        for key in ("learning_rate", "head_learning_rate", "new_token_learning_rate"):
            value = config[key]
            if not isinstance(value, (int, float)) or not 0 < value < 1:
                raise ConfigError(key, value, "a number between 0 and 1", component=name)
        for key in ("dropout", "entity_confidence_threshold", "calibration_fraction"):
            value = config[key]
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(key, value, "a number in [0, 1)", component=name)
        weight = config["contrastive_weight"]
        if weight is not None and (
            not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0
        ):
            expected = "null (auto) or a number >= 0"
            raise ConfigError("contrastive_weight", weight, expected, component=name)
        for key in ("prototype_head_init", "extend_vocabulary"):
            if not isinstance(config[key], bool):
                raise ConfigError(key, config[key], "true or false", component=name)
        path = config["model_name_or_path"]
        if path is not None and not Path(path).is_dir():
            raise ConfigError(
                "model_name_or_path",
                path,
                "a local folder with a Hugging Face model",
                component=name,
            )

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TransformerIntentEntityClassifier:
        """Create an untrained component (weights are loaded in :meth:`train`)."""
        return cls(config, model_storage, resource, execution_context)

    # ------------------------------------------------------------------ training
    def _encoder_path(self) -> Path:
        from components.model_prep import minilm_path

        path = self._config["model_name_or_path"]
        return Path(path) if path else minilm_path()

    def train(self, training_data: TrainingData) -> Resource:
        """Fine-tune on the NLU examples and persist into the model storage."""
        from components.nlu.joint_model import EntitySpan, Example, JointClassifier

        examples = []
        for message in training_data.intent_examples:
            text = message.get(TEXT)
            if not text:
                continue
            spans = [
                EntitySpan(int(e["start"]), int(e["end"]), entity_label(e))
                for e in message.get(ENTITIES) or []
            ]
            examples.append(Example(text, message.get(INTENT), spans))
        if not examples:
            logger.warning("intent_classifier.no_training_data")
            return self._resource
        intents = sorted({e.intent for e in examples})
        labels = sorted({s.label for e in examples for s in e.entities})
        cfg = self._config
        classifier = JointClassifier.build(
            self._encoder_path(),
            intents,
            labels,
            cfg["max_length"],
            cfg["dropout"],
            cfg["random_seed"],
            texts=[e.text for e in examples] if cfg["extend_vocabulary"] else (),
        )
        started = time.monotonic()

        def progress(epoch: int, total: int, loss: float) -> None:
            if cfg["show_progress"]:
                print(
                    f"[kefu] intent/entity model: epoch {epoch}/{total} loss={loss:.4f} "
                    f"({time.monotonic() - started:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )

        train, held_back = self.calibration_split(
            examples, cfg["calibration_fraction"], cfg["random_seed"]
        )
        if cfg["prototype_head_init"]:
            classifier.init_intent_head(train)
        classifier.fit(
            train,
            epochs=cfg["epochs"],
            batch_size=cfg["batch_size"],
            learning_rate=cfg["learning_rate"],
            head_learning_rate=cfg["head_learning_rate"],
            new_token_learning_rate=cfg["new_token_learning_rate"],
            seed=cfg["random_seed"],
            progress=progress,
            contrastive_weight=self.contrastive_weight(train, cfg["contrastive_weight"]),
        )
        if held_back:
            classifier.calibrate(held_back)
        logger.info(
            "intent_classifier.trained examples=%d held_back=%d temperature=%.3f intents=%d "
            "entity_labels=%d seconds=%.1f",
            len(train),
            len(held_back),
            classifier.temperature,
            len(intents),
            len(labels),
            time.monotonic() - started,
        )
        self._classifier = classifier
        self.persist()
        return self._resource

    @staticmethod
    def contrastive_weight(examples: list[Any], configured: float | None) -> float:
        """Contrastive loss weight: ``configured``, or for ``None`` 1.0 when the median intent
        has at most 16 examples (few-shot data) and 0 otherwise."""
        if configured is not None:
            return float(configured)
        counts = sorted(Counter(e.intent for e in examples).values())
        if len(counts) < 2:
            return 0.0
        return 1.0 if counts[len(counts) // 2] <= 16 else 0.0

    @staticmethod
    def calibration_split(
        examples: list[Any], fraction: float, seed: int, min_per_intent: int = 5
    ) -> tuple[list[Any], list[Any]]:
        """Hold back ``fraction`` of each intent's examples (intents with enough of them).

        Deterministic for a seed. Returns ``(train, held_back)``; nothing is held back when the
        fraction is 0 or fewer than 10 examples would be held back in total (too few to fit).
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
        train = [e for i, e in enumerate(examples) if i not in held]
        return train, [examples[i] for i in sorted(held)]

    def persist(self) -> None:
        """Save the fine-tuned model into the model storage."""
        if self._classifier is None:
            return
        with self._model_storage.write_to(self._resource) as directory:
            self._classifier.save(Path(directory))

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> TransformerIntentEntityClassifier:
        """Load a trained component; without a persisted model it predicts nothing."""
        from components.nlu.joint_model import JointClassifier

        classifier = None
        try:
            with model_storage.read_from(resource) as directory:
                if (Path(directory) / "labels.json").is_file():
                    classifier = JointClassifier.load(Path(directory))
        except ValueError:
            logger.warning("intent_classifier.not_trained resource=%s", resource.name)
        return cls(config, model_storage, resource, execution_context, classifier)

    # ------------------------------------------------------------------ inference
    def process(self, messages: list[Message]) -> list[Message]:
        """Set intent, intent_ranking and entities on each message (one batched pass)."""
        if not messages:
            return messages
        texts = [(m.get(TEXT) or "") for m in messages]
        try:
            if self._classifier is None:
                raise RuntimeError("component has not been trained")
            predictions = self._classifier.predict(texts)
        except Exception as exc:  # keep the conversation alive; fallback will answer
            logger.warning("intent_classifier.predict_failed error=%s", type(exc).__name__)
            for message in messages:
                if message.get(INTENT) is None:  # FallbackClassifier needs an intent key
                    message.set(INTENT, {"name": None, "confidence": 0.0}, add_to_output=True)
                    message.set(INTENT_RANKING_KEY, [], add_to_output=True)
            return messages
        threshold = self._config["entity_confidence_threshold"]
        for message, text, prediction in zip(messages, texts, predictions, strict=True):
            ranking = prediction.intent_ranking
            if not text.strip():
                # nothing to classify: zero confidence lets FallbackClassifier answer
                ranking = [(name, 0.0) for name, _ in ranking]
            top_name, top_conf = ranking[0]
            message.set(INTENT, {"name": top_name, "confidence": top_conf}, add_to_output=True)
            message.set(
                INTENT_RANKING_KEY,
                [
                    {"name": name, "confidence": conf}
                    for name, conf in ranking[: self._config["ranking_length"]]
                ],
                add_to_output=True,
            )
            entities = [
                split_entity_label(e)
                for e in prediction.entities
                if e["confidence_entity"] >= threshold
            ]
            entities = self.add_extractor_name(entities)
            message.set(ENTITIES, message.get(ENTITIES, []) + entities, add_to_output=True)
            if message.get(TOKENS_NAMES[TEXT]) is None:
                # Rasa's `rasa test nlu` scores entities token by token; without a Rasa
                # tokenizer in the pipeline it would find no tokens and report nothing
                message.set(TOKENS_NAMES[TEXT], word_tokens(text))
        return messages
