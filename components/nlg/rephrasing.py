"""Rasa NLG that rephrases chosen responses with the configured LLM — safely.

Set it in ``endpoints.yml``::

    nlg:
      type: components.nlg.rephrasing.RephrasingNLG
      rephrase_all: false      # or mark responses with `metadata: {rephrase: true}`
      timeout: 2.0
      llm: {backend: transformers}

The template always wins when anything is off: the LLM is disabled, slow, fails, or its
output drops/changes a fact, adds a number or link, switches language or trips the guard.
Buttons, images and custom payloads are never touched — only ``text`` is rephrased.

Rasa constructs custom NLGs with an empty domain and later assigns ``responses`` only to
``TemplatedNaturalLanguageGenerator`` instances, which is why this class subclasses it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, TypedDict

from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from components.errors import ConfigError, KefuError, LLMBusyError, LLMUnavailableError
from components.llm.client import LLMClient
from components.nlg.fact_check import check_reply
from components.nlg.prompt import clean_reply, rephrase_messages, reply_token_budget
from components.safety.injection import neutralize
from components.services import get_services
from components.text import LANGUAGE_KEY

logger = logging.getLogger(__name__)

# time kept from the timeout for the fact checks, the guard and resuming on Rasa's event loop
# (busy parsing other messages under load: up to ~0.2 s in benchmarks/probe.py)
CHECK_MARGIN_S = 0.3
UPSET_CATEGORIES = {"insult", "profanity", "threat", "sexual_or_profane"}


class NLGInfo(TypedDict):
    """What the NLG adds to a response's metadata under ``kefu_nlg``."""

    tone: str  # neutral | empathetic
    rephrased: bool
    template_used: bool
    reason: str  # ok, timeout, llm_busy, llm_loading, llm_unavailable, llm_down, check_failed:..
    latency_s: float
    backend: str


class RephrasingNLG(TemplatedNaturalLanguageGenerator):
    """Templated responses, optionally rephrased by an LLM under fact checks."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Default configuration (keys of the ``nlg`` block in endpoints.yml)."""
        return {
            # Rephrase every text response, not only those with metadata.rephrase: true.
            "rephrase_all": False,
            # Seconds the LLM may take before the template is used instead.
            "timeout": 2.0,
            # Conversation turns (user + bot events) shown to the LLM as context.
            "history": 4,
            # Upper bound on generated tokens per reply.
            "max_new_tokens": 80,
            # Sampling temperature (0 = greedy: the same rephrasing every time; > 0 varies the
            # wording, nucleus top-p 0.9; the fact checks guard every sample either way).
            "temperature": 0.0,
            # LLM client configuration (see components.llm.client.create_client).
            "llm": {},
            # Load the LLM in the background at start-up so the first reply is not slow.
            "warm_up": True,
            # Intents after which replies take an empathetic tone (also: a negative
            # parse_data["sentiment"] from any NLU component, or an insult the guard flagged).
            "empathetic_intents": ["complain", "complaint", "request_human", "nlu_fallback"],
        }

    def __init__(
        self, endpoint_config: EndpointConfig | None = None, domain: Domain | None = None
    ) -> None:
        super().__init__(domain.responses if domain else {})
        extra = dict(endpoint_config.kwargs) if endpoint_config else {}
        self.config = {**self.get_default_config(), **extra}
        self._validate(self.config)
        self._client: LLMClient | None = None
        self._client_error: str | None = None
        self._client_lock = threading.Lock()
        self._loading: threading.Thread | None = None
        if self.config["warm_up"]:
            self._start_loading()

    def _start_loading(self) -> None:
        """Load the LLM in a background thread (once)."""
        if self._loading is None:
            from components.llm.transformers_backend import preload_transformers

            preload_transformers()  # never race the main thread's imports (see its docstring)
            self._loading = threading.Thread(
                target=self._get_client, name="kefu-nlg-llm-load", daemon=True
            )
            self._loading.start()

    @staticmethod
    def _validate(config: dict[str, Any]) -> None:
        if not isinstance(config["timeout"], (int, float)) or config["timeout"] <= 0:
            raise ConfigError(
                "timeout", config["timeout"], "seconds > 0", component="RephrasingNLG"
            )
        temperature = config["temperature"]
        if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            raise ConfigError(
                "temperature", temperature, "a number in [0, 2]", component="RephrasingNLG"
            )
        for key in ("history", "max_new_tokens"):
            if not isinstance(config[key], int) or config[key] < 0:
                raise ConfigError(key, config[key], "an integer >= 0", component="RephrasingNLG")
        if not isinstance(config["llm"], dict):
            raise ConfigError("llm", config["llm"], "a mapping", component="RephrasingNLG")
        intents = config["empathetic_intents"]
        if not isinstance(intents, list) or not all(isinstance(i, str) for i in intents):
            raise ConfigError(
                "empathetic_intents", intents, "a list of intent names", component="RephrasingNLG"
            )

    def _get_client(self) -> LLMClient | None:
        """The process's client for the configured backend, loaded once.

        Shared with other callers of the same backend (e.g. the few-shot intent classifier);
        None (and logged) when it cannot load.
        """
        with self._client_lock:
            if self._client is None and self._client_error is None:
                try:
                    client = get_services().llm(self.config["llm"])
                    client.warm_up()
                    self._client = client
                except Exception as exc:  # model missing etc.: templates keep working
                    self._client_error = type(exc).__name__
                    logger.warning("nlg.llm_unavailable error=%s", self._client_error)
            return self._client

    def _wants_rephrase(self, response: dict[str, Any]) -> bool:
        metadata = response.get("metadata") or {}
        return bool(response.get("text")) and bool(
            metadata.get("rephrase", self.config["rephrase_all"])
        )

    async def generate(
        self,
        utter_action: str,
        tracker: DialogueStateTracker,
        output_channel: str,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        """Fill the template, then try to rephrase it (see the module docstring)."""
        response = self.generate_from_slots(
            utter_action, self.condition_values(tracker), output_channel, **kwargs
        )
        if response is None or not self._wants_rephrase(response):
            return response
        template = response["text"]
        started = time.monotonic()
        protected = [str(v) for v in kwargs.values() if isinstance(v, (str, int, float))]
        tone = self.tone(tracker)
        text, reason = await self._rephrase(template, tracker, protected, tone)
        info: NLGInfo = {
            "tone": tone,
            "rephrased": text is not None,
            "template_used": text is None,
            "reason": reason,
            "latency_s": round(time.monotonic() - started, 3),
            "backend": self.config["llm"].get("backend", "transformers"),
        }
        logger.info(
            "nlg.rephrase action=%s rephrased=%s reason=%s latency_s=%.3f",
            utter_action,
            info["rephrased"],
            reason,
            info["latency_s"],
        )
        response = dict(response)
        if text is not None:
            response["text"] = text
        response["metadata"] = {**(response.get("metadata") or {}), "kefu_nlg": info}
        return response

    @staticmethod
    def condition_values(tracker: DialogueStateTracker) -> dict[str, Any]:
        """The slot values response conditions are matched against.

        The tracker's slots, except that ``language`` is the latest message's own language when
        the NLU could tell it (``LanguageDetector``): a turn is answered in the language it was
        written in even when the slot could not be updated (the action server was down, or a
        test replays a story without running actions).
        """
        values = tracker.current_slot_values()
        latest = tracker.latest_message
        language = (latest.parse_data or {}).get(LANGUAGE_KEY) if latest is not None else None
        if language and LANGUAGE_KEY in values:
            values = {**values, LANGUAGE_KEY: language}
        return values

    def tone(self, tracker: DialogueStateTracker) -> str:
        """``empathetic`` when the customer seems upset, else ``neutral``.

        Signals, from the latest user message: a negative ``sentiment`` in the parse data (any NLU
        component may set ``{"label": "negative"}``), an intent in ``empathetic_intents`` (e.g.
        a complaint), or an insult/profanity the guard flagged.
        """
        message = tracker.latest_message
        if message is None:
            return "neutral"
        data = message.parse_data or {}
        sentiment = data.get("sentiment")
        label = sentiment.get("label") if isinstance(sentiment, dict) else sentiment
        intent = (data.get("intent") or {}).get("name")
        categories = set((data.get("guard") or {}).get("categories") or [])
        upset = (
            str(label).lower() in ("negative", "angry", "anger", "frustrated")
            or intent in self.config["empathetic_intents"]
            or bool(categories & UPSET_CATEGORIES)
        )
        return "empathetic" if upset else "neutral"

    async def _rephrase(
        self,
        template: str,
        tracker: DialogueStateTracker,
        protected: list[str],
        tone: str = "neutral",
    ) -> tuple[str | None, str]:
        client = self._client
        if client is None:
            # still loading (or failed): never make the user wait for a cold model
            self._start_loading()
            return None, "llm_unavailable" if self._client_error else "llm_loading"
        try:
            generation = await client.agenerate(
                self._prompt(template, tracker, tone),
                # the whole rephrase (checks included) must fit in the timeout
                timeout_s=max(0.1, self.config["timeout"] - CHECK_MARGIN_S),
                max_new_tokens=reply_token_budget(template, self.config["max_new_tokens"]),
                temperature=float(self.config["temperature"]),
            )
        except KefuError as exc:
            if isinstance(exc, LLMBusyError):
                return None, "llm_busy"  # others are waiting: the template now, not in 2 s
            if isinstance(exc, TimeoutError):
                return None, "timeout"
            return None, "llm_down" if isinstance(exc, LLMUnavailableError) else "llm_error"
        except Exception as exc:  # pragma: no cover - defensive
            logger.warning("nlg.error error=%s", type(exc).__name__)
            return None, "llm_error"
        candidate = clean_reply(generation.text)
        slots = [
            str(v) for v in tracker.current_slot_values().values() if isinstance(v, (str, int))
        ]
        reasons = check_reply(template, candidate, slots + protected)
        if not reasons and get_services().guard.scan(candidate).hits:
            reasons = ["guard"]
        if reasons:
            return None, "check_failed:" + ",".join(reasons)
        return candidate, "ok"

    def _prompt(
        self, template: str, tracker: DialogueStateTracker, tone: str = "neutral"
    ) -> list[dict[str, str]]:
        services = get_services()
        # personal data never goes into a prompt (the LLM may be a remote server): one-way tokens
        guard, masker = services.guard, services.prompt_masker
        turns: list[tuple[str, str]] = []
        for event in tracker.events:
            if event.type_name == "user" and getattr(event, "text", None):
                turns.append(("Customer", neutralize(guard.mask(masker.mask(event.text)))))
            elif event.type_name == "bot" and getattr(event, "text", None):
                turns.append(("Assistant", masker.mask(event.text, learned=False)))
        history = turns[-self.config["history"] :] if self.config["history"] else []
        return rephrase_messages(template, history, tone)
