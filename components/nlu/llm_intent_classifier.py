"""Few-shot LLM intent classification: nearest training examples in the prompt, LLM picks.

Use it instead of (or next to) the fine-tuned classifier when an assistant has only a handful of
examples per intent::

    pipeline:
      - name: components.nlu.llm_intent_classifier.FewShotLLMIntentClassifier
        examples_per_prompt: 8
        llm: {backend: openai, base_url: "http://127.0.0.1:8008/v1", model: kefu-local}

Training stores every example with its sentence embedding (the bundled MiniLM). For a message,
the ``examples_per_prompt`` nearest examples are shown to the configured LLM together with the
list of intents, and the LLM answers with one intent name. An answer that is not one of the
intents, an empty message, a timeout or an LLM error gives ``fallback_intent`` with confidence 0,
so ``FallbackClassifier``/rules answer it (the component warns and passes through, never
raises). Answers are cached per text. The confidence is the share of the shown examples that
carry the chosen intent (the LLM gives no probability).
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.errors import ConfigError
from components.services import get_services

logger = logging.getLogger(__name__)

PROMPT = (
    "You classify customer messages for a shop assistant. Possible intents: {intents}.\n"
    "Examples:\n{examples}\n\nMessage: {text}\nAnswer with the intent name only."
)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class FewShotLLMIntentClassifier(GraphComponent):
    """Intent classification by an LLM shown the nearest training examples.

    At inference it warns and passes the message through with ``fallback_intent`` rather than
    crash when the LLM fails, times out or answers something that is not an intent.
    """

    @staticmethod
    def required_packages() -> list[str]:
        """Packages the classifier needs (the sentence encoder and the LLM)."""
        return ["torch", "transformers", "sentence_transformers"]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Default configuration."""
        return {
            # Nearest training examples shown to the LLM per message.
            "examples_per_prompt": 8,
            # LLM client configuration (see components.llm.create_client); default: bundled model.
            "llm": {},
            # Seconds the LLM may take per message.
            "timeout": 5.0,
            # Intent set when the LLM cannot decide.
            "fallback_intent": "nlu_fallback",
            # Messages whose answers are kept in memory.
            "cache_size": 1024,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        examples: list[dict] | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        name = type(self).__name__
        for key in ("examples_per_prompt", "cache_size"):
            value = self._config[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(key, value, "a positive integer", component=name)
        if not isinstance(self._config["llm"], dict):
            raise ConfigError("llm", self._config["llm"], "a mapping", component=name)
        timeout = self._config["timeout"]
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError("timeout", timeout, "seconds > 0", component=name)
        self._model_storage, self._resource = model_storage, resource
        self._examples = examples or []
        self._intents = sorted({e["intent"] for e in self._examples})
        self._matrix: Any = None
        self._cache: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._encoder: Any = None  # the sentence encoder, loaded on first use

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> FewShotLLMIntentClassifier:
        """A new, untrained component."""
        return cls(config, model_storage, resource, execution_context)

    def embed(self, texts: list[str]) -> Any:
        """Unit-length sentence embeddings (the bundled MiniLM, loaded once per component)."""
        if self._encoder is None:
            from sentence_transformers import SentenceTransformer

            from components.model_prep import minilm_path

            self._encoder = SentenceTransformer(str(minilm_path()), device="cpu")
        return self._encoder.encode(texts, normalize_embeddings=True)

    def train(self, training_data: TrainingData) -> Resource:
        """Store the examples and their embeddings in the model storage."""
        self._examples = [
            {"text": m.get(TEXT), "intent": m.get(INTENT)}
            for m in training_data.intent_examples
            if m.get(TEXT) and m.get(INTENT)
        ]
        self._intents = sorted({e["intent"] for e in self._examples})
        if not self._examples:
            logger.warning("llm_intent.no_training_data")
            return self._resource
        self._matrix = self.embed([e["text"] for e in self._examples])
        with self._model_storage.write_to(self._resource) as directory:
            (Path(directory) / "examples.json").write_text(
                json.dumps(self._examples, ensure_ascii=False), encoding="utf-8"
            )
            import numpy as np

            np.save(Path(directory) / "embeddings.npy", self._matrix)
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> FewShotLLMIntentClassifier:
        """Load the stored examples (none stored: every message gets the fallback intent)."""
        import numpy as np

        examples, matrix = [], None
        try:
            with model_storage.read_from(resource) as directory:
                folder = Path(directory)
                if (folder / "examples.json").is_file():
                    examples = json.loads((folder / "examples.json").read_text(encoding="utf-8"))
                    matrix = np.load(folder / "embeddings.npy")
        except ValueError:
            logger.warning("llm_intent.not_trained resource=%s", resource.name)
        component = cls(config, model_storage, resource, execution_context, examples)
        component._matrix = matrix
        return component

    def prompt(self, text: str, query_vector: Any) -> tuple[list[dict[str, str]], list[dict]]:
        """The chat for one message and the examples shown in it (personal data masked)."""
        import numpy as np

        masker = get_services().prompt_masker  # one-way: personal data never reaches the LLM
        scores = self._matrix @ query_vector
        nearest = np.argsort(-scores)[: self._config["examples_per_prompt"]]
        shown = "\n".join(
            f"Message: {masker.mask(self._examples[i]['text'])}\n"
            f"Intent: {self._examples[i]['intent']}"
            for i in nearest
        )
        content = PROMPT.format(
            intents=", ".join(self._intents), examples=shown, text=masker.mask(text)
        )
        return [{"role": "user", "content": content}], [self._examples[i] for i in nearest]

    def classify(self, text: str) -> tuple[str, float]:
        """``(intent, confidence)`` for one text (cached)."""
        fallback = (self._config["fallback_intent"], 0.0)
        if not text.strip() or self._matrix is None or not self._examples:
            return fallback
        if text in self._cache:
            self._cache.move_to_end(text)
            return self._cache[text]
        query = self.embed([text])[0]
        chat, shown = self.prompt(text, query)
        try:
            # the same loaded model as the NLG when both name the same backend
            client = get_services().llm(self._config["llm"])
            answer = client.generate(
                chat, timeout_s=self._config["timeout"], max_new_tokens=12
            ).text
        except Exception as exc:  # LLM down, slow or broken: the fallback intent answers
            logger.warning("llm_intent.llm_failed error=%s", type(exc).__name__)
            return fallback
        intent = self.parse(answer)
        result = fallback
        if intent is not None:
            share = sum(e["intent"] == intent for e in shown) / max(1, len(shown))
            result = (intent, round(max(share, 0.05), 4))
        self._cache[text] = result
        if len(self._cache) > self._config["cache_size"]:
            self._cache.popitem(last=False)
        return result

    def parse(self, answer: str) -> str | None:
        """The intent named in the LLM's answer, or None when it names none (or several)."""
        words = {w.strip(".") for w in re.findall(r"[\w/.-]+", answer.lower())}
        named = [i for i in self._intents if i.lower() in words]
        return named[0] if len(named) == 1 else None

    def process(self, messages: list[Message]) -> list[Message]:
        """Set ``intent`` and ``intent_ranking`` on each message."""
        for message in messages:
            try:
                name, confidence = self.classify(message.get(TEXT) or "")
            except Exception as exc:  # never take the conversation down
                logger.warning("llm_intent.error error=%s", type(exc).__name__)
                name, confidence = self._config["fallback_intent"], 0.0
            intent = {"name": name, "confidence": confidence}
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [intent], add_to_output=True)
        return messages
