"""Rasa NLU component that runs the guard engine on every user message.

It is the first component of the pipeline. It never changes the text (Rasa keeps the original
user text no matter what a component does); it adds a ``guard`` property to the parse data:
the strongest action (``block``/``mask``/``flag``), the categories and the offsets of each
hit, and the prompt-injection rules that fired (``injection``), so policies and actions can
act on it. The matched words themselves are not copied into the parse data.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from components.errors import ConfigError
from components.guard import GuardEngine
from components.injection import screen

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
            # Terms never reported, e.g. brand names that contain a listed word.
            "allow": [],
        }

    def __init__(self, config: dict[str, Any], engine: GuardEngine | None = None) -> None:
        self._config = {**self.get_default_config(), **config}
        for key in ("lexicons", "allow"):
            if not isinstance(self._config[key], list):
                raise ConfigError(key, self._config[key], "a list", component=type(self).__name__)
        self._engine = engine or GuardEngine.from_files(
            self._config["lexicons"], self._config["allow"]
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
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        """Annotate each message with a ``guard`` property (added to the parse output)."""
        for message in messages:
            text = message.get(TEXT) or ""
            try:
                result = self._engine.scan(text)
            except Exception as exc:  # never take the conversation down
                logger.warning("guard.error error=%s", type(exc).__name__)
                continue
            summary = result.as_dict()
            summary["injection"] = screen(text).rules
            message.set(GUARD, summary, add_to_output=True)
            if summary["injection"]:
                logger.info("guard.injection rules=%s", ",".join(summary["injection"]))
            if result.hits:
                logger.info(
                    "guard.hit action=%s categories=%s", result.action, ",".join(result.categories)
                )
        return messages
