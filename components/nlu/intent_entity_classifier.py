"""Rasa graph component: a fine-tuned transformer that predicts intents and entities.

Register it in ``config.yml`` as
``components.nlu.intent_entity_classifier.TransformerIntentEntityClassifier``.
It fine-tunes a local Hugging Face encoder (default: multilingual-e5-small for Chinese data,
the bundled all-MiniLM-L6-v2 otherwise) with an intent head and a BIO entity head, and needs no
Rasa tokenizer or featurizer in front of it.

This module only adapts Rasa's messages, config and model storage; the engine knows nothing of
Rasa: :mod:`components.nlu.joint_model` (the model and inference), :mod:`components.bio`
(entity spans <-> BIO tags), :mod:`components.nlu.training` (fine-tuning and calibration) and
:mod:`components.nlu.persistence` (creating, saving and loading model folders). They import
torch, so they are imported only when a model is trained or loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    INTENT,
    INTENT_RANKING_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.bio import entity_label, split_entity_label
from components.errors import ConfigError
from components.text import WORD_TOKENS

if TYPE_CHECKING:
    from components.nlu.joint_model import JointClassifier

logger = logging.getLogger(__name__)


def word_tokens(text: str) -> list[Token]:
    """Words (each Chinese character alone) and punctuation, as Rasa tokens with offsets."""
    return [Token(m.group(0), m.start(), m.end()) for m in WORD_TOKENS.finditer(text)]


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

    Args:
        config: The component's settings (see :meth:`get_default_config`); checked here.
        model_storage: Rasa's model storage.
        resource: This component's resource in the storage.
        execution_context: Rasa's execution context.
        classifier: A trained classifier, or ``None`` before training.

    Raises:
        ConfigError: naming the first bad setting and its value.
    """

    @staticmethod
    def required_packages() -> list[str]:
        """Python packages the component needs besides Rasa (checked by Rasa's validation).

        Returns:
            The packages' import names.
        """
        return ["torch", "transformers"]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Default configuration, one comment per setting.

        Returns:
            Setting names and their defaults.
        """
        return {
            # Local Hugging Face encoder folder; None = a bundled one: Kefu's multilingual
            # encoder (multilingual-e5-small + its fine-tuned delta) for Chinese data, else
            # all-MiniLM-L6-v2 (see chinese_encoder_share).
            "model_name_or_path": None,
            # With model_name_or_path unset: train on the multilingual encoder when at least
            # this share of the examples contains Chinese (it reads English too; the untuned
            # e5 while the delta is missing); else on MiniLM. 1.0 = always MiniLM.
            "chinese_encoder_share": 0.1,
            # Lower encoder layers (and the embeddings) kept at their pretrained weights;
            # None = auto: 6 of multilingual-e5's 12, none of MiniLM's. A word-embedding
            # table of over 100k rows (e5's 250k pieces) is never trained.
            "frozen_layers": None,
            # Quantise the encoder's linear layers to int8 when the model is loaded for
            # inference (about 2x faster on CPU); None = auto: on for multilingual-e5.
            "quantize": None,
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
            # Show training progress on stderr: a bar with an ETA on a terminal, else a line
            # every 30 s (CI logs).
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
            # vocabulary lacks (MiniLM's WordPiece reads most Chinese as [UNK]); no effect on
            # multilingual-e5, whose SentencePiece vocabulary covers Chinese.
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
        classifier: JointClassifier | None = None,
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
        share = config["chinese_encoder_share"]
        if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0 <= share <= 1:
            raise ConfigError("chinese_encoder_share", share, "a number in [0, 1]", component=name)
        for key in ("prototype_head_init", "extend_vocabulary"):
            if not isinstance(config[key], bool):
                raise ConfigError(key, config[key], "true or false", component=name)
        layers = config["frozen_layers"]
        if layers is not None and (
            not isinstance(layers, int) or isinstance(layers, bool) or layers < 0
        ):
            expected = "null (auto) or an integer >= 0"
            raise ConfigError("frozen_layers", layers, expected, component=name)
        if config["quantize"] is not None and not isinstance(config["quantize"], bool):
            expected = "null (auto), true or false"
            raise ConfigError("quantize", config["quantize"], expected, component=name)
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
        """Create an untrained component (weights are loaded in :meth:`train`).

        Args:
            config: The component's settings.
            model_storage: Rasa's model storage.
            resource: This component's resource in the storage.
            execution_context: Rasa's execution context.

        Returns:
            The component.
        """
        return cls(config, model_storage, resource, execution_context)

    # ------------------------------------------------------------------ training
    def _encoder_path(self, texts: Sequence[str] = ()) -> Path:
        """The encoder to fine-tune (:func:`components.nlu.encoder_choice.choose_encoder`)."""
        from components.nlu.encoder_choice import choose_encoder

        cfg = self._config
        return choose_encoder(cfg["model_name_or_path"], cfg["chinese_encoder_share"], texts)

    def train(self, training_data: TrainingData) -> Resource:
        """Fine-tune on the NLU examples and persist into the model storage.

        Args:
            training_data: Rasa's NLU training data; examples without text are skipped.

        Returns:
            The component's resource (nothing is persisted without examples).
        """
        from components.bio import EntitySpan
        from components.nlu import training
        from components.nlu.progress import TrainingProgress

        examples = []
        for message in training_data.intent_examples:
            text = message.get(TEXT)
            if not text:
                continue
            spans = [
                EntitySpan(int(e["start"]), int(e["end"]), entity_label(e))
                for e in message.get(ENTITIES) or []
            ]
            examples.append(training.Example(text, message.get(INTENT), spans))
        if not examples:
            logger.warning("intent_classifier.no_training_data")
            return self._resource
        cfg = self._config
        self._classifier = training.train(
            examples,
            self._encoder_path([e.text for e in examples]),
            epochs=cfg["epochs"],
            batch_size=cfg["batch_size"],
            learning_rate=cfg["learning_rate"],
            head_learning_rate=cfg["head_learning_rate"],
            new_token_learning_rate=cfg["new_token_learning_rate"],
            max_length=cfg["max_length"],
            dropout=cfg["dropout"],
            seed=cfg["random_seed"],
            calibration_fraction=cfg["calibration_fraction"],
            contrastive_weight=cfg["contrastive_weight"],
            prototype_head_init=cfg["prototype_head_init"],
            extend_vocabulary=cfg["extend_vocabulary"],
            frozen_layers=cfg["frozen_layers"],
            quantize=cfg["quantize"],
            reporter=TrainingProgress() if cfg["show_progress"] else None,
        )
        self.persist()
        return self._resource

    @staticmethod
    def contrastive_weight(examples: list[Any], configured: float | None) -> float:
        """:func:`components.nlu.training.resolve_contrastive_weight`, for the config."""
        from components.nlu.training import resolve_contrastive_weight

        return resolve_contrastive_weight(examples, configured)

    @staticmethod
    def calibration_split(
        examples: list[Any], fraction: float, seed: int, min_per_intent: int = 5
    ) -> tuple[list[Any], list[Any]]:
        """:func:`components.nlu.training.calibration_split` (held-back calibration data)."""
        from components.nlu.training import calibration_split

        return calibration_split(examples, fraction, seed, min_per_intent)

    def persist(self) -> None:
        """Save the fine-tuned model into the model storage."""
        if self._classifier is None:
            return
        from components.nlu import persistence

        with self._model_storage.write_to(self._resource) as directory:
            persistence.save(self._classifier, Path(directory))

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> TransformerIntentEntityClassifier:
        """Load a trained component; without a persisted model it predicts nothing.

        Args:
            config: The component's settings.
            model_storage: Rasa's model storage.
            resource: This component's resource in the storage.
            execution_context: Rasa's execution context.
            **kwargs: Unused (Rasa's interface).

        Returns:
            The component.
        """
        from components.nlu import persistence

        classifier = None
        try:
            with model_storage.read_from(resource) as directory:
                if (Path(directory) / "labels.json").is_file():
                    quantize = {**cls.get_default_config(), **config}["quantize"]
                    classifier = persistence.load(Path(directory), quantize)
        except ValueError:
            logger.warning("intent_classifier.not_trained resource=%s", resource.name)
        return cls(config, model_storage, resource, execution_context, classifier)

    # ------------------------------------------------------------------ inference
    def process(self, messages: list[Message]) -> list[Message]:
        """Set intent, intent_ranking and entities on each message (one batched pass).

        Args:
            messages: The messages; changed in place.

        Returns:
            The same messages.
        """
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
