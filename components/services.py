"""One services object per process: the guard, the PII maskers, LLM clients and the knowledge base.

Every caller — the NLU guard component, the NLG, the knowledge action, the tracker store — asks
:func:`get_services` for what it needs instead of building its own copy, so one guard
configuration (``kefu.guard`` in ``endpoints.yml``) applies to user input, NLG output,
knowledge answers and actions alike, and one loaded LLM serves every caller of the same backend
(the timeout is given per call). Everything is built lazily on first use and is thread-safe;
:meth:`Services.warm_up` builds the slow parts ahead of the first message (the Rasa server does
this when it loads the pipeline and the NLG, the action server when it starts).

Tests inject their own object with :func:`set_services` instead of patching module globals.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from components.errors import ConfigError
from components.settings import Settings, load_settings

if TYPE_CHECKING:
    from components.llm.client import LLMClient
    from components.privacy.pii import PIIMasker
    from components.privacy.tagger import PIITagger
    from components.safety.engine import GuardEngine
    from knowledge.answering import AnswerComposer
    from knowledge.retrieval import KnowledgeBase

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Services:
    """Lazily built, process-wide collaborators.

    Args:
        settings: The validated settings (default: :func:`~components.settings.load_settings`
            on first use).
        guard: A ready guard engine (tests); default: built from ``settings.guard``.
        pii: A ready PII masker for what is stored (tests); default: reversible with
            ``KEFU_VAULT_KEY``, one-way otherwise.
        knowledge: A ready knowledge base (tests); default: built from ``settings.knowledge``.
        composer: A ready answer composer (tests); default: from ``settings.knowledge.llm``.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        guard: GuardEngine | None = None,
        pii: PIIMasker | None = None,
        knowledge: KnowledgeBase | None = None,
        composer: AnswerComposer | None = None,
    ) -> None:
        self._settings = settings
        self._built: dict[str, Any] = {
            k: v
            for k, v in {
                "guard": guard,
                "pii": pii,
                "knowledge": knowledge,
                "composer": composer,
            }.items()
            if v is not None
        }
        self._lock = threading.RLock()

    def _get(self, name: str, build: Callable[[], T]) -> T:
        """The object called ``name``, built once by ``build``."""
        found = self._built.get(name)
        if found is not None:
            return found
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
            return self._built[name]

    @property
    def settings(self) -> Settings:
        """The settings this process runs with (read and validated once)."""
        if self._settings is None:
            with self._lock:
                if self._settings is None:
                    self._settings = load_settings()
        return self._settings

    @property
    def guard(self) -> GuardEngine:
        """The guard engine of ``settings.guard``, shared by every path that carries text."""
        return self._get("guard", self._build_guard)

    def _build_guard(self) -> GuardEngine:
        from components.safety.engine import GuardEngine, default_engine
        from components.safety.lexicon import DEFAULT_LEXICONS

        config = self.settings.guard
        classifier = None
        if config.offensive_classifier:
            from components.safety.offensive import default_classifier

            classifier = default_classifier()
        offensive = {
            "classifier": classifier,
            "offensive_action": config.offensive_action,
            "offensive_threshold": config.offensive_threshold or None,
        }
        if config.is_default:
            return default_engine().with_classifier(**offensive)
        shipped = [p for p in DEFAULT_LEXICONS if p.is_file()] if config.shipped_lexicons else []
        if not shipped and not config.lexicons:
            raise ConfigError(
                "kefu.guard.lexicons",
                [],
                "at least one lexicon when shipped_lexicons is false",
                component="settings",
            )
        engine = GuardEngine.from_files(
            [*shipped, *config.lexicons],
            list(config.allow),
            category_actions=dict(config.category_actions),
            pinyin=config.pinyin,
        ).with_classifier(**offensive)
        logger.info("guard.configured lexicons=%d", len(config.lexicons))
        return engine

    @property
    def pii(self) -> PIIMasker:
        """The masker for what is stored: reversible through the vault with ``KEFU_VAULT_KEY``."""
        return self._get("pii", self._build_pii)

    def _build_pii(self) -> PIIMasker:
        from pathlib import Path

        from components.paths import kefu_home
        from components.privacy.pii import PIIMasker

        vault = Path(self.settings.privacy.vault)
        return PIIMasker.from_env(
            vault if vault.is_absolute() else kefu_home() / vault, tagger=self.pii_tagger
        )

    @property
    def pii_tagger(self) -> PIITagger | None:
        """The learned name/address recogniser (None when ``kefu.privacy`` turns it off)."""
        if not self.settings.privacy.learned_recogniser:
            return None

        def build() -> PIITagger:
            from components.privacy.tagger import default_tagger

            return default_tagger()

        return self._get("pii_tagger", build)

    @property
    def prompt_masker(self) -> PIIMasker:
        """A one-way masker for text sent to an LLM (never written to the vault)."""

        def build() -> PIIMasker:
            from components.privacy.pii import PIIMasker

            return PIIMasker(tagger=self.pii_tagger)

        return self._get("prompt_masker", build)

    def llm(self, config: dict[str, Any] | None = None) -> LLMClient:
        """The client for one backend configuration, loaded once per process.

        Callers that name the same backend and model share the loaded model; ``timeout`` is not
        part of the key (each caller passes its own deadline per call).

        Raises:
            ConfigError: for an unknown backend or a bad value.
        """
        from components.llm.client import create_client

        return create_client(config)  # the process-wide cache of clients, keyed by backend

    @property
    def knowledge(self) -> KnowledgeBase:
        """The knowledge base of ``settings.knowledge`` (loaded on first question or warm-up).

        Its memory index is the process's assistant's (``KEFU_ASSISTANT``) unless
        ``kefu.knowledge.index_path`` names one.
        """

        def build() -> KnowledgeBase:
            from knowledge.retrieval import KnowledgeBase
            from knowledge.stores import store_from_settings

            config = self.settings.knowledge.resolved()  # the process's assistant's index
            return KnowledgeBase(config, store_from_settings(config))

        return self._get("knowledge", build)

    @property
    def composer(self) -> AnswerComposer:
        """Turns retrieved passages into replies (grounded LLM if configured, else extractive)."""

        def build() -> AnswerComposer:
            from knowledge.answering import AnswerComposer

            config = self.settings.knowledge.llm_config
            return AnswerComposer(
                llm=config, client=self.llm(config) if config else None, guard=self.guard
            )

        return self._get("composer", build)

    def warm_up(self, *, knowledge: bool = False) -> None:
        """Build the guard and PII masker now, and load the knowledge base if asked.

        Failures are logged, not raised: a question later gets the catalogue's error reply.
        """
        self.guard.scan("warm up 预热")
        self.pii.find("warm up 预热")  # loads the learned recogniser and jieba's dictionary
        if knowledge:
            from components.errors import KefuError

            try:
                self.knowledge.warm_up()
                _ = self.composer
            except KefuError as exc:
                logger.warning("knowledge.warm_up_failed code=%s", exc.code)
            except Exception as exc:  # corrupt index etc.: answered per question with KEFU-KB
                logger.warning("knowledge.warm_up_failed error=%s", type(exc).__name__)


_SERVICES: Services | None = None
_SERVICES_LOCK = threading.Lock()


def get_services() -> Services:
    """The process's services object (created on first call)."""
    global _SERVICES
    if _SERVICES is None:
        with _SERVICES_LOCK:
            if _SERVICES is None:
                _SERVICES = Services()
    return _SERVICES


def set_services(services: Services | None) -> Services | None:
    """Install ``services`` as the process's object (None: build a fresh one on next use).

    Returns:
        The object it replaces, so a test can put it back.
    """
    global _SERVICES
    with _SERVICES_LOCK:
        previous, _SERVICES = _SERVICES, services
    return previous
