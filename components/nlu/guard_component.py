"""Rasa NLU component that runs the guard engine on every user message.

It runs after the intent classifiers (``required_components`` makes Rasa enforce that). It never
changes the text (Rasa keeps the original user text no matter what a component does); it adds a
``guard`` property to the parse data (:class:`GuardSummary`): the strongest action
(``block``/``mask``/``flag``), the categories and the offsets of each hit, the prompt-injection
rules that fired and the types and offsets of personal data, so policies and actions can act on
it. The matched words and values themselves are not copied into the parse data. When a
``block`` entry matches, the intent becomes ``block_intent`` (default ``guard_blocked``), which
a rule answers with a fixed safe reply — which is why it is registered as an intent classifier.
An insult aimed at the assistant — an insult, profanity or ``offensive`` hit in a message that
addresses it ("you", "your bot", "你们客服", "机器人") — becomes ``insult_intent`` (default
``insult``), which a rule answers with a calm reply and the offer of a human.

What the guard matches (lexicons, allow-list, category actions, pinyin) is configured once for
every path in ``endpoints.yml`` under ``kefu.guard`` (:mod:`components.settings`); the engine
comes from the process's services object, shared with the NLG, the knowledge answers and the
actions.
"""

from __future__ import annotations

import logging
import re
from typing import Any, TypedDict

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from components.errors import ConfigError
from components.privacy.pii import PIIMasker
from components.safety.engine import GuardEngine, GuardResult
from components.safety.injection import screen
from components.services import get_services

logger = logging.getLogger(__name__)

GUARD = "guard"
#: Keys that used to configure the matcher here; they now live in ``kefu.guard``.
MOVED_KEYS = ("lexicons", "allow", "category_actions", "pinyin")
#: Hit categories that make a message addressed to the assistant an insult.
INSULT_CATEGORIES = frozenset({"insult", "profanity", "sexual_or_profane", "offensive"})
#: Words that address the assistant (or the shop behind it).
ADDRESSEE = re.compile(
    r"(?i)\b(?:you|your|you're|youre|u|ur|yourself|bot|robot|assistant|agent|support|"
    r"customer service)\b|你|您|客服|机器人|人工智障|小二|店家|商家"
)


class GuardHitSummary(TypedDict):
    """One lexicon hit, without the matched text."""

    category: str
    severity: int
    action: str
    start: int
    end: int


class PIISummary(TypedDict):
    """Where one piece of personal data is, without its value."""

    type: str
    start: int
    end: int


class GuardSummary(TypedDict):
    """The ``guard`` property of a message's parse data."""

    action: str | None
    categories: list[str]
    hits: list[GuardHitSummary]
    injection: list[str]
    pii: list[PIISummary]


@DefaultV1Recipe.register(
    # it may replace the intent (block_intent); non-trainable: it runs at inference only
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER],
    is_trainable=False,
)
class SensitiveContentGuard(GraphComponent):
    """Flags sensitive content in user messages.

    At inference it warns and passes the message through unflagged rather than crash if the
    engine fails on an input.
    """

    @classmethod
    def required_components(cls) -> list[type]:
        """An intent classifier must run first: a block hit overrides its intent."""
        return [IntentClassifier]

    @staticmethod
    def required_packages() -> list[str]:
        """Packages the guard engine needs."""
        return ["ahocorasick_rs", "pypinyin", "opencc"]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Default configuration (the matcher itself is configured in ``kefu.guard``)."""
        return {
            # Intent forced when a "block" entry matches (a rule answers it with a fixed reply);
            # null keeps the classifier's intent.
            "block_intent": "guard_blocked",
            # Intent forced for an insult aimed at the assistant (a rule answers it calmly and
            # offers a human); null keeps the classifier's intent.
            "insult_intent": "insult",
        }

    def __init__(
        self,
        config: dict[str, Any],
        engine: GuardEngine | None = None,
        masker: PIIMasker | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        name = type(self).__name__
        for key in MOVED_KEYS:
            if key in self._config:
                raise ConfigError(
                    key,
                    self._config[key],
                    f"no '{key}' here: the guard is configured once for input, NLG output, "
                    f"knowledge answers and actions, under 'kefu: guard: {key}:' in endpoints.yml",
                    component=name,
                )
        for key in ("block_intent", "insult_intent"):
            value = self._config[key]
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(key, value, "an intent name or null", component=name)
        self._engine = engine
        self._masker = masker

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SensitiveContentGuard:
        """Build the component; the process's guard engine and PII masker are built here."""
        services = get_services()
        return cls(config, services.guard, services.pii)

    def process(self, messages: list[Message]) -> list[Message]:
        """Annotate each message with a ``guard`` property (added to the parse output)."""
        if self._engine is None:
            self._engine = get_services().guard
        texts = [message.get(TEXT) or "" for message in messages]
        try:
            results = self._engine.scan_many(texts)
            masker = self._masker or get_services().pii
            found = [masker.find(text) for text in texts]
        except Exception as exc:  # never take the conversation down
            logger.warning("guard.error error=%s", type(exc).__name__)
            return messages
        for message, text, result, pii in zip(messages, texts, results, found, strict=True):
            summary = GuardSummary(
                **result.as_dict(),
                injection=screen(text).rules,
                # where personal data is (types and offsets, never values): actions can ask for
                # it from the vault instead of reading it from the stored, masked text
                pii=[PIISummary(type=p.type, start=p.start, end=p.end) for p in pii],
            )
            message.set(GUARD, summary, add_to_output=True)
            if summary["injection"]:
                logger.info("guard.injection rules=%s", ",".join(summary["injection"]))
            if result.hits:
                logger.info(
                    "guard.hit action=%s categories=%s", result.action, ",".join(result.categories)
                )
            if result.blocked and self._config["block_intent"]:
                self._force_intent(message, self._config["block_intent"])
            elif self._config["insult_intent"] and is_aimed_insult(text, result):
                logger.info("guard.insult")
                self._force_intent(message, self._config["insult_intent"])
        return messages

    @staticmethod
    def _force_intent(message: Message, name: str) -> None:
        """Make ``name`` the message's intent (full confidence, first in the ranking)."""
        intent = {"name": name, "confidence": 1.0}
        ranking = [i for i in message.get(INTENT_RANKING_KEY) or [] if i.get("name") != name]
        message.set(INTENT, intent, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [intent, *ranking], add_to_output=True)


def is_aimed_insult(text: str, result: GuardResult) -> bool:
    """Whether ``text`` insults the assistant: an insulting hit, and words that address it."""
    if not any(hit.category in INSULT_CATEGORIES for hit in result.hits):
        return False
    return ADDRESSEE.search(text) is not None
