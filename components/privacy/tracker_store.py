"""A tracker store wrapper that never writes raw personal data.

Set it in ``endpoints.yml``::

    tracker_store:
      type: components.privacy.tracker_store.MaskingTrackerStore
      inner:                      # any Rasa tracker store configuration
        type: SQL
        dialect: sqlite
        db: .kefu/tracker.db

Before each save, user and bot texts, the text and entity values in parse data, and slot values
are masked by :class:`components.privacy.pii.PIIMasker` (tokens like ``[PHONE_1d37a3d9]``); the inner
store (SQL, Redis, Mongo, ...) and its event broker only ever see the masked copy. With
``KEFU_VAULT_KEY`` set, originals go to an encrypted vault (``KEFU_HOME/vault.db``) from which the
action server can recover a value it needs. Rasa falls back to an in-memory store without
saying so loudly when a custom class path is wrong; ``make run``/``make serve`` therefore check
this class path before starting (``python -m components.privacy.tracker_store --check``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import TrackerStore, create_tracker_store
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from components.paths import kefu_home
from components.privacy import log_masking
from components.privacy.event_masking import mask_event
from components.privacy.pii import PIIMasker

logger = logging.getLogger(__name__)


class MaskingTrackerStore(TrackerStore):
    """Masks personal data, then delegates to the configured inner tracker store."""

    def __init__(
        self,
        domain: Domain | None = None,
        host: str | None = None,
        event_broker: EventBroker | None = None,
        inner: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(domain, event_broker)
        config = dict(inner or {"type": "SQL", "dialect": "sqlite", "db": "tracker.db"})
        self._inner = create_tracker_store(EndpointConfig.from_dict(config), domain, event_broker)
        self._masker = PIIMasker.from_env(kefu_home() / "vault.db")
        log_masking.install(self._masker)  # Rasa's debug logs carry whole messages
        logger.info(
            "tracker_store.masking inner=%s reversible=%s",
            type(self._inner).__name__,
            self._masker.vault is not None,
        )

    @property
    def domain(self) -> Domain:
        """The domain (shared with the inner store)."""
        return self._domain

    @domain.setter
    def domain(self, domain: Domain | None) -> None:
        self._domain = domain or Domain.empty()
        if hasattr(self, "_inner"):
            self._inner.domain = self._domain

    def masked(self, tracker: DialogueStateTracker) -> DialogueStateTracker:
        """A copy of ``tracker`` whose events carry no raw personal data."""
        events = [mask_event(self._masker, e.as_dict()) for e in tracker.events]
        return DialogueStateTracker.from_dict(
            tracker.sender_id, events, self.domain.slots, tracker._max_event_history
        )

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Save the masked copy through the inner store."""
        await self._inner.save(self.masked(tracker))

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The stored (masked) tracker."""
        return await self._inner.retrieve(sender_id)

    async def retrieve_full_tracker(self, conversation_id: str) -> DialogueStateTracker | None:
        """The stored (masked) tracker with all sessions."""
        return await self._inner.retrieve_full_tracker(conversation_id)

    async def keys(self) -> Iterable[str]:
        """Conversation ids of the inner store."""
        return await self._inner.keys()


def main(argv: list[str] | None = None) -> int:
    """``--check ENDPOINTS``: fail loudly unless the configured custom classes load.

    Rasa quietly falls back to an in-memory tracker store, or to no event broker at all, when a
    custom class path in ``endpoints.yml`` does not import; this check stops ``make run`` first.
    """
    import rasa.shared.utils.common
    from rasa.core.utils import read_endpoints_from_path

    args = argv if argv is not None else sys.argv[1:]
    path = args[1] if len(args) > 1 and args[0] == "--check" else "endpoints.yml"
    endpoints = read_endpoints_from_path(path)
    builtin = {"sql", "redis", "mongod", "dynamo", "file", "pika", "kafka", "in_memory"}
    failures = 0
    for key, config in (
        ("tracker_store", endpoints.tracker_store),
        ("event_broker", endpoints.event_broker),
    ):
        if config is None or config.type is None or config.type.lower() in builtin:
            continue
        try:
            rasa.shared.utils.common.class_from_module_path(config.type)
        except (AttributeError, ImportError) as exc:
            fallback = "keep conversations in memory" if key == "tracker_store" else "drop events"
            print(
                f"error: {key} type '{config.type}' in {path} cannot be imported ({exc}); "
                f"Rasa would silently {fallback} instead.",
                file=sys.stderr,
            )
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
