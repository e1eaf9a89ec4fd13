"""A tracker store wrapper that never writes raw personal data.

Set it in ``endpoints.yml``::

    tracker_store:
      type: components.stores.tracker_store.MaskingTrackerStore
      inner:                      # any Rasa tracker store configuration
        type: SQL
        dialect: sqlite
        db: .kefu/tracker.db

Before each save, user and bot texts, the text and entity values in parse data, and slot values
are masked by :class:`components.privacy.pii.PIIMasker` (tokens like ``[PHONE_1d37a3d9]``); the
inner store (SQL, Redis, Mongo, ...) and its event broker only ever see the masked copy. With
``KEFU_VAULT_KEY`` set, originals go to an encrypted vault (``KEFU_HOME/vault.db``) from which the
action server can recover a value it needs. Rasa falls back to an in-memory store without
saying so loudly when a custom class path is wrong; ``make run``/``make serve`` therefore check
this class path before starting (``python -m components.stores.tracker_store --check``).

Saving masks only the events added since the last save of the conversation: the masked tracker
built so far is kept per conversation (least recently used first out, ``masked_cache_size``
conversations, default 1000; 0 turns it off) and the new events are masked and applied to it,
so the masking cost of a save does not grow with the length of the conversation. The inner store
always gets a tracker with exactly the incoming tracker's events (masked) and the state they
produce (slots, latest message), as it would from masking everything. A tracker that continues
the kept one (same first event, and the kept one's last event at the same position) only has
its further events masked, including those another replica stored in between; any other (a new
session was retrieved, the process restarted, the cache was full) is masked whole again.
Masking is idempotent, so events that come back masked from the store stay as they are.

A store that is briefly unreachable (PostgreSQL or Redis restarting, a failover) must not cost
events: Rasa's own fail-safe would run the turn on an empty in-memory tracker and keep its events
only there. So a SQL inner store checks each pooled connection before use (``pool_pre_ping``:
connections left over from before a restart are replaced, not failed), and ``save``/``retrieve``
retry connection errors for up to ``retry_seconds`` (default 10) with backoff; saves are
idempotent (the SQL store adds only the events it does not have yet). When the store stays
unreachable longer, :class:`StoreUnavailable` fails the turn cleanly (the channel apologises, the
customer tries again) instead of letting Rasa's fail-safe fork the conversation into memory.

With an event broker, the events a save added are published by this wrapper after the save
succeeded: their count is known from the retrieve of the same turn, where Rasa's stores would
read the whole stored session back on every save to find them (a cost that grows with the
conversation), and a retried save publishes nothing twice.

Sender ids are personal data too (a channel may use the customer's phone number or e-mail
address), so the inner store only ever sees the conversation's sender token instead
(``sender_`` and 16 hex digits, :meth:`components.privacy.pii.PIIMasker.sender_token`, keyed and
stable across restarts; kept in the vault with ``KEFU_VAULT_KEY``): ``save`` hands it a tracker
whose ``sender_id`` is the token (and the sender id inside event metadata is replaced by it too),
``retrieve`` and ``retrieve_full_tracker`` look the token up and give the tracker back under the
sender id they were asked for. A token is itself accepted wherever a sender id is. ``keys``
lists the stored conversations: their original sender ids when the vault holds them (with
``KEFU_VAULT_KEY``), their tokens otherwise — both work with ``retrieve``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import TrackerStore, create_tracker_store
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, deserialise_events
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from components.errors import ConfigError, StoreUnavailable, check_number
from components.paths import lock_down
from components.privacy import log_masking
from components.privacy.event_masking import mask_event
from components.services import get_services

logger = logging.getLogger(__name__)


def _transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the store could not be reached (worth retrying)."""
    import sqlalchemy.exc

    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
        )
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ConnectionError", "TimeoutError", "OperationalError"}) or isinstance(
        exc, OSError
    )


def _pre_ping(store: Any) -> None:
    """Make a SQL store test pooled connections before use (survives a database restart)."""
    engine = getattr(store, "engine", None)
    if engine is None or not hasattr(store, "sessionmaker") or engine.dialect.name == "sqlite":
        return
    import sqlalchemy as sa
    from rasa.core.tracker_store import create_engine_kwargs

    fresh = sa.create_engine(engine.url, pool_pre_ping=True, **create_engine_kwargs(engine.url))
    engine.dispose()
    store.engine = fresh
    store.sessionmaker = sa.orm.session.sessionmaker(bind=fresh)


@dataclass
class _MaskedSoFar:
    """A conversation's masked tracker and what of the source tracker it covers."""

    tracker: DialogueStateTracker
    covered: int  # source events masked into ``tracker``
    first: tuple[str, float]  # (type, timestamp) of the first source event
    last: tuple[str, float]  # (type, timestamp) of the last covered source event


def _mark(event: Event) -> tuple[str, float]:
    return event.type_name, event.timestamp


class MaskingTrackerStore(TrackerStore):
    """Masks personal data, then delegates to the configured inner tracker store.

    Args:
        domain: The assistant's domain (its slots are needed to rebuild trackers).
        host: Unused (Rasa passes the endpoint's ``url``).
        event_broker: Passed on to the inner store.
        inner: The inner store's endpoint configuration (default: SQLite ``tracker.db``).
        masked_cache_size: Conversations whose masked tracker is kept for incremental saves.
        retry_seconds: How long ``save`` and ``retrieve`` retry when the inner store cannot be
            reached (0: no retries).
        **kwargs: Other endpoint keys (ignored).
    """

    def __init__(
        self,
        domain: Domain | None = None,
        host: str | None = None,
        event_broker: EventBroker | None = None,
        inner: dict | None = None,
        masked_cache_size: int = 1000,
        retry_seconds: float = 10.0,
        **kwargs: Any,
    ) -> None:
        lock_down()  # umask 077 + owner-only KEFU_HOME before Rasa writes a file
        if not isinstance(masked_cache_size, int) or masked_cache_size < 0:
            raise ConfigError(
                "tracker_store.masked_cache_size", masked_cache_size, "an integer >= 0"
            )
        # at most 50: below Rasa's 60 s lock lifetime
        check_number(
            "tracker_store.retry_seconds", retry_seconds, 0, 50, "a number of seconds from 0 to 50"
        )
        self._retry_seconds = float(retry_seconds)
        self._cache_size = masked_cache_size
        self._cache: OrderedDict[str, _MaskedSoFar] = OrderedDict()
        self._stored: OrderedDict[str, int] = OrderedDict()
        super().__init__(domain, event_broker)
        config = dict(inner or {"type": "SQL", "dialect": "sqlite", "db": "tracker.db"})
        # the broker is fed here, not by the inner store (see _publish_new)
        self._inner = create_tracker_store(EndpointConfig.from_dict(config), domain, None)
        _pre_ping(self._inner)
        self._masker = get_services().pii  # kefu.privacy settings; reversible with KEFU_VAULT_KEY
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
        self._cache.clear()  # kept trackers were built with the old domain's slots
        if hasattr(self, "_inner"):
            self._inner.domain = self._domain

    def _mask_events(self, events: Iterable[Event], sender_id: str) -> list[Event]:
        return deserialise_events(
            [mask_event(self._masker, e.as_dict(), sender_id) for e in events]
        )

    def masked(self, tracker: DialogueStateTracker) -> DialogueStateTracker:
        """A copy of ``tracker`` with no raw personal data (all events masked, token sender id)."""
        sender_id = tracker.sender_id
        events = [mask_event(self._masker, e.as_dict(), sender_id) for e in tracker.events]
        return DialogueStateTracker.from_dict(
            self._masker.sender_token(sender_id),
            events,
            self.domain.slots,
            tracker._max_event_history,
        )

    def _masked_incrementally(
        self, tracker: DialogueStateTracker, kept: _MaskedSoFar | None
    ) -> _MaskedSoFar:
        """The masked form of ``tracker``, extending ``kept`` when ``tracker`` continues it.

        ``tracker`` continues ``kept`` when it has at least as many events and its first and
        last covered events are the ones ``kept`` was built from (same type and timestamp):
        stores only ever append events, so the events in between are the same too.
        """
        events = tracker.events
        total = len(events)
        if (
            kept is not None
            and 0 < kept.covered <= total
            and _mark(events[0]) == kept.first
            and _mark(events[kept.covered - 1]) == kept.last
            and kept.tracker._max_event_history == tracker._max_event_history
        ):
            new = (events[i] for i in range(kept.covered, total))
            for event in self._mask_events(new, tracker.sender_id):
                kept.tracker.update(event)
            masked = kept.tracker
        else:
            masked = self.masked(tracker)
        if not total:
            return _MaskedSoFar(masked, 0, ("", 0.0), ("", 0.0))
        return _MaskedSoFar(masked, total, _mark(events[0]), _mark(events[-1]))

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Save the masked copy through the inner store, masking only events not masked yet.

        The inner store gets the copy under the conversation's sender token; the kept masked
        trackers are keyed by the sender id as given.
        """
        # taken out while in use: a concurrent save of the same conversation masks from scratch
        kept = self._cache.pop(tracker.sender_id, None)
        current = self._masked_incrementally(tracker, kept)
        length = len(current.tracker.events)
        stored = self._stored.pop(tracker.sender_id, None)
        if self.event_broker is not None and stored is None:  # not retrieved here: ask the store
            token = current.tracker.sender_id
            old = await self._retrying("retrieve", lambda: self._inner.retrieve(token))
            stored = len(old.events) if old is not None else 0
        await self._retrying("save", lambda: self._inner.save(current.tracker))
        self._publish_new(current.tracker, stored or 0)
        self._remember(tracker.sender_id, length)
        # on failure nothing is kept
        if self._cache_size and current.covered and len(current.tracker.events) == length:
            self._cache[tracker.sender_id] = current
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The stored (masked) tracker, looked up by the sender token, under ``sender_id``."""
        token = self._masker.sender_token(sender_id)
        tracker = await self._retrying("retrieve", lambda: self._inner.retrieve(token))
        self._remember(sender_id, len(tracker.events) if tracker is not None else 0)
        if tracker is not None:
            tracker.sender_id = sender_id  # saved again later: masked to the same token
        return tracker

    def _remember(self, sender_id: str, stored: int) -> None:
        """Note how many of the conversation's events the store holds (bounded, LRU)."""
        self._stored[sender_id] = stored
        self._stored.move_to_end(sender_id)
        while len(self._stored) > max(self._cache_size, 1000):
            self._stored.popitem(last=False)

    def _publish_new(self, masked: DialogueStateTracker, stored: int) -> None:
        """Publish the events after the first ``stored`` ones (those the save added).

        Rasa's stores find them by reading the whole stored session back on every save
        (``TrackerStore.stream_events``), a cost that grows with the conversation; the count is
        known here from the retrieve (or the last save) of the same turn, under Rasa's lock.
        Published after the save succeeded, so a retried save never publishes twice.
        """
        if self.event_broker is None:
            return
        for event in list(masked.events)[stored:]:
            self.event_broker.publish({"sender_id": masked.sender_id, **event.as_dict()})

    async def _retrying(self, operation: str, call: Any) -> Any:
        """``await call()``, retried with backoff while the inner store cannot be reached."""
        deadline = time.monotonic() + self._retry_seconds
        delay, attempt = 0.2, 1
        while True:
            try:
                return await call()
            except Exception as exc:
                if not _transient(exc):
                    raise
                if time.monotonic() + delay > deadline:
                    logger.error(
                        "tracker_store.unavailable operation=%s attempts=%d error=%s",
                        operation,
                        attempt,
                        type(exc).__name__,
                    )
                    raise StoreUnavailable(operation, type(exc).__name__) from exc
                logger.warning(
                    "tracker_store.retry operation=%s attempt=%d error=%s",
                    operation,
                    attempt,
                    type(exc).__name__,
                )
                await asyncio.sleep(delay)
                delay, attempt = min(delay * 2, 2.0), attempt + 1

    async def retrieve_full_tracker(self, conversation_id: str) -> DialogueStateTracker | None:
        """The stored (masked) tracker with all sessions, under ``conversation_id``."""
        token = self._masker.sender_token(conversation_id)
        tracker = await self._inner.retrieve_full_tracker(token)
        if tracker is not None:
            tracker.sender_id = conversation_id
        return tracker

    async def keys(self) -> Iterable[str]:
        """The stored conversations: original sender ids the vault can reveal, tokens otherwise.

        The inner store only holds sender tokens; with ``KEFU_VAULT_KEY`` set they are revealed
        from the vault (one query per 500). Either form works with :meth:`retrieve`.
        """
        tokens = list(await self._inner.keys())
        vault = self._masker.vault
        if vault is None or not tokens:
            return tokens
        revealed = vault.reveal_many(tokens)
        return [revealed.get(token, token) for token in tokens]


def main(argv: list[str] | None = None) -> int:
    """``--check ENDPOINTS``: fail loudly unless the configured custom classes load.

    Rasa quietly falls back to an in-memory tracker store, or to no event broker at all, when a
    custom class path in ``endpoints.yml`` does not import; this check stops ``make run`` first.
    """
    import rasa.shared.utils.common
    from rasa.core.utils import read_endpoints_from_path

    from components.rasa_cli import prepare_warnings

    prepare_warnings()
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
