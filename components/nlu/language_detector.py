"""Rasa NLU component that tells which language each user message is in (zh / en).

It adds a ``language`` property (``zh`` or ``en``) to the parse data of every message whose
language it can tell (:func:`components.text.customer_language`: any Chinese makes a message
Chinese; an order number, a phone number or a button payload alone says nothing and gets
``None``). The domain's ``language`` slot keeps it: its custom slot mapping runs
``action_set_language``, which copies the property into the slot when it changes, so the slot
follows the customer — a switch of language mid-conversation switches it — and keeps its value
through messages that say nothing. Responses pick their variation by the slot (conditional
response variations, see the README's "Writing bilingual responses"); actions read the slot
for the texts they compose; the NLG prefers the latest message's own language when it has one
(a turn is answered in its language even if the action server could not set the slot).

Why a property and not an entity: an entity on every message would be scored as a prediction
error by ``rasa test`` for every test story and NLU example that does not annotate it.
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
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.errors import ConfigError
from components.text import CUSTOMER_LANGUAGES, LANGUAGE_KEY, customer_language

logger = logging.getLogger(__name__)


@DefaultV1Recipe.register(
    # it adds a property derived from the text for later steps, like a featurizer; it
    # extracts no entity and classifies no intent
    [DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER],
    is_trainable=False,
)
class LanguageDetector(GraphComponent):
    """Adds ``language`` (``zh``/``en``/None) to the parse data of each user message."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """The component's defaults."""
        return {
            # Languages it may report; a message in another one reports None.
            "languages": list(CUSTOMER_LANGUAGES),
        }

    def __init__(self, config: dict[str, Any]) -> None:
        languages = config.get("languages")
        if (
            not isinstance(languages, list)
            or not languages
            or any(lang not in CUSTOMER_LANGUAGES for lang in languages)
        ):
            raise ConfigError(
                "languages",
                languages,
                f"a non-empty list drawn from {list(CUSTOMER_LANGUAGES)}",
                component="LanguageDetector",
            )
        self.languages = frozenset(languages)

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageDetector:
        """Build the component from its pipeline configuration."""
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        """Set ``language`` on each message (None when its words do not tell)."""
        for message in messages:
            try:
                language = customer_language(message.get(TEXT) or "")
            except Exception as exc:  # never lose a message over the language
                logger.warning("nlu.language_failed error=%s", type(exc).__name__)
                language = None
            if language not in self.languages:
                language = None
            message.set(LANGUAGE_KEY, language, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training data is left alone (the language is not learnt)."""
        return training_data
