"""Rasa NLU component that runs the guard engine on every user message.

It is the last component of the pipeline. It never changes the text (Rasa keeps the original
user text no matter what a component does); it adds a ``guard`` property to the parse data:
the strongest action (``block``/``mask``/``flag``), the categories and the offsets of each
hit, the prompt-injection rules that fired (``injection``) and the types and offsets of personal
data (``pii``), so policies and actions can act on it. The matched words and values themselves
are not copied into the parse data. When a ``block`` entry matches, the intent becomes
``block_intent`` (default ``guard_blocked``), which a rule answers with a fixed safe reply.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from components.errors import ConfigError
from components.privacy.pii import find_pii
from components.safety.engine import GuardEngine, default_engine
from components.safety.injection import screen

logger = logging.getLogger(__name__)

GUARD = "guard"


@DefaultV1Recipe.register(
    # Rasa runs non-trainable entity extractors at inference only, which is what a guard needs.
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR],
    is_trainable=False,
)
class SensitiveContentGuard(GraphComponent):
    """Flags sensitive content in user messages.

    At inference it warns and passes the message through unflagged rather than crash if the
    engine fails on an input.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Default configuration."""
        return {
            # Lexicon TSV files (term, category, severity, action); empty = shipped default.
            "lexicons": [],
            # Phrases inside which nothing is reported, e.g. brand names containing a term
            # (added to the shipped allow-list, components/safety/lexicons/allow.txt).
            "allow": [],
            # Action per category, overriding the lexicon, e.g. {"political": "mask"}.
            "category_actions": {},
            # Also match Chinese terms typed in full pinyin ("sha bi").
            "pinyin": True,
            # Intent forced when a "block" entry matches (a rule answers it with a fixed reply);
            # null keeps the classifier's intent. Place the guard after the classifiers.
            "block_intent": "guard_blocked",
        }

    def __init__(self, config: dict[str, Any], engine: GuardEngine | None = None) -> None:
        self._config = {**self.get_default_config(), **config}
        name = type(self).__name__
        for key in ("lexicons", "allow"):
            if not isinstance(self._config[key], list):
                raise ConfigError(key, self._config[key], "a list", component=name)
        if not isinstance(self._config["category_actions"], dict):
            raise ConfigError(
                "category_actions", self._config["category_actions"], "a mapping", component=name
            )
        if not isinstance(self._config["pinyin"], bool):
            raise ConfigError("pinyin", self._config["pinyin"], "true or false", component=name)
        block_intent = self._config["block_intent"]
        if block_intent is not None and (not isinstance(block_intent, str) or not block_intent):
            raise ConfigError(
                "block_intent", block_intent, "an intent name or null", component=name
            )
        self._engine = engine

    def _build_engine(self) -> GuardEngine:
        config, defaults = self._config, self.get_default_config()
        if {key: config[key] for key in defaults} == defaults:
            return default_engine()  # shared with the NLG and knowledge answers in this process
        return GuardEngine.from_files(
            config["lexicons"],
            config["allow"],
            category_actions=config["category_actions"],
            pinyin=config["pinyin"],
        )

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SensitiveContentGuard:
        """Build the component and its matcher (lexicons are read once, here)."""
        component = cls(config)
        component._engine = component._build_engine()
        return component

    def process(self, messages: list[Message]) -> list[Message]:
        """Annotate each message with a ``guard`` property (added to the parse output)."""
        if self._engine is None:
            self._engine = self._build_engine()
        texts = [message.get(TEXT) or "" for message in messages]
        try:
            results = self._engine.scan_many(texts)
        except Exception as exc:  # never take the conversation down
            logger.warning("guard.error error=%s", type(exc).__name__)
            return messages
        for message, text, result in zip(messages, texts, results, strict=True):
            summary = result.as_dict()
            summary["injection"] = screen(text).rules
            # where personal data is (types and offsets, never values): actions can ask for it
            # from the vault instead of reading it from the stored, masked text
            summary["pii"] = [
                {"type": p.type, "start": p.start, "end": p.end} for p in find_pii(text)
            ]
            message.set(GUARD, summary, add_to_output=True)
            if summary["injection"]:
                logger.info("guard.injection rules=%s", ",".join(summary["injection"]))
            if result.hits:
                logger.info(
                    "guard.hit action=%s categories=%s", result.action, ",".join(result.categories)
                )
            if result.blocked and self._config["block_intent"]:
                self._force_intent(message, self._config["block_intent"])
        return messages

    @staticmethod
    def _force_intent(message: Message, name: str) -> None:
        """Make ``name`` the message's intent (full confidence, first in the ranking)."""
        intent = {"name": name, "confidence": 1.0}
        ranking = [i for i in message.get(INTENT_RANKING_KEY) or [] if i.get("name") != name]
        message.set(INTENT, intent, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [intent, *ranking], add_to_output=True)
