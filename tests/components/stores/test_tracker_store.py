"""The wrapper against a real SQLite tracker store: nothing raw reaches the database."""

import asyncio
import json
import sqlite3
import time

import pytest
from rasa.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

from components.errors import ConfigError
from components.stores.tracker_store import MaskingTrackerStore, main

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
slots:
  phone:
    type: text
    mappings: [{type: custom}]
"""
)
PHONE, EMAIL = "13812345678", "li.lei@example.cn"


def test_saved_events_are_masked_in_sqlite(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_VAULT_KEY", "k" * 32)
    db = tmp_path / "tracker.db"
    store = MaskingTrackerStore(DOMAIN, inner={"type": "SQL", "dialect": "sqlite", "db": str(db)})
    tracker = DialogueStateTracker("alice", DOMAIN.slots)
    parse = {
        "text": f"call me on {PHONE}",
        "intent": {"name": "inform", "confidence": 1.0},
        "entities": [{"entity": "phone", "value": PHONE, "start": 11, "end": 22}],
    }
    tracker.update(UserUttered(f"call me on {PHONE}", parse["intent"], parse["entities"], parse))
    tracker.update(SlotSet("phone", PHONE))
    tracker.update(ActionExecuted("utter_confirm"))
    tracker.update(BotUttered(f"We will call {PHONE} and mail {EMAIL}."))
    asyncio.run(store.save(tracker))
    asyncio.run(store.save(tracker))  # saving again adds nothing raw either

    raw = db.read_bytes().decode("latin-1")
    assert PHONE not in raw and EMAIL not in raw
    with sqlite3.connect(db) as conn:
        count = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert count == 4

    stored = asyncio.run(store.retrieve("alice"))
    assert stored.get_slot("phone").startswith("[PHONE_")
    assert stored.latest_message.text.startswith("call me on [PHONE_")
    assert stored.latest_message.entities[0]["value"] == stored.get_slot("phone")
    assert asyncio.run(store.keys()) == ["alice"]
    # the original stays recoverable for whoever holds the key
    assert store._masker.vault.reveal(stored.get_slot("phone")) == PHONE
    assert isinstance(store._inner, SQLTrackerStore)


def test_names_and_addresses_without_a_cue_are_masked_in_sqlite(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_VAULT_KEY", "k" * 32)
    db = tmp_path / "tracker.db"
    store = MaskingTrackerStore(DOMAIN, inner={"type": "SQL", "dialect": "sqlite", "db": str(db)})
    tracker = DialogueStateTracker("bob", DOMAIN.slots)
    texts = ["hi, Sara Schwarz here, my parcel is late", "浙江省杭州市西湖区文三路90号能送吗"]
    for text in texts:
        tracker.update(UserUttered(text, {"name": "inform", "confidence": 1.0}, [], {"text": text}))
    asyncio.run(store.save(tracker))
    raw = db.read_bytes().decode("utf-8", errors="replace")
    for value in ("Sara", "Schwarz", "文三路", "杭州市西湖区"):
        assert value not in raw
    stored = asyncio.run(store.retrieve("bob"))
    masked = [e.text for e in stored.events if isinstance(e, UserUttered)]
    assert masked[0].startswith("hi, [NAME_") and masked[1].startswith("[ADDRESS_")
    assert store._masker.vault.reveal(masked[0][4:19]) == "Sara Schwarz"


def test_domain_updates_reach_the_inner_store(tmp_path):
    store = MaskingTrackerStore(
        None, inner={"type": "SQL", "dialect": "sqlite", "db": str(tmp_path / "t.db")}
    )
    store.domain = DOMAIN
    assert store._inner.domain is DOMAIN


def test_endpoint_check(tmp_path, capsys):
    good = tmp_path / "good.yml"
    good.write_text("tracker_store:\n  type: components.stores.tracker_store.MaskingTrackerStore\n")
    assert main(["--check", str(good)]) == 0
    bad = tmp_path / "bad.yml"
    bad.write_text("tracker_store:\n  type: components.nope.MaskingTrackerStore\n")
    assert main(["--check", str(bad)]) == 1
    assert "silently" in capsys.readouterr().err


# --- incremental masking on save --------------------------------------------------------------


class Conversation:
    """Raw events as Rasa would produce them, with increasing timestamps, and a log of all."""

    def __init__(self):
        self.clock = time.time() + 1.0
        self.log = []  # every raw event, across sessions, in order

    def _ts(self):
        self.clock += 0.5
        return self.clock

    def turn(self, i):
        phone, email = f"139{i:08d}", f"user{i}@example.cn"
        text = f"my number is {phone}, mail {email}"
        start = text.index(phone)
        intent = {"name": "inform", "confidence": 1.0}
        entities = [{"entity": "phone", "value": phone, "start": start, "end": start + 11}]
        parse = {"text": text, "intent": intent, "entities": entities}
        events = [
            UserUttered(text, intent, entities, parse, timestamp=self._ts()),
            SlotSet("phone", phone, timestamp=self._ts()),
            ActionExecuted("utter_confirm", timestamp=self._ts()),
            BotUttered(f"We will call {phone} and mail {email}.", timestamp=self._ts()),
            ActionExecuted("action_listen", timestamp=self._ts()),
        ]
        self.log += events
        return events, [phone, email]

    def session_start(self):
        events = [
            ActionExecuted("action_session_start", timestamp=self._ts()),
            SessionStarted(timestamp=self._ts()),
            ActionExecuted("action_listen", timestamp=self._ts()),
        ]
        self.log += events
        return events


@pytest.fixture
def shared_key(monkeypatch):
    """One token key for every store instance (replicas of one deployment)."""
    monkeypatch.setenv("KEFU_VAULT_KEY", "replica-shared-key-0123456789")


def _sql_store(db, **kwargs):
    return MaskingTrackerStore(
        DOMAIN, inner={"type": "SQL", "dialect": "sqlite", "db": str(db)}, **kwargs
    )


def _rows(db):
    with sqlite3.connect(db) as conn:
        return [json.loads(d) for (d,) in conn.execute("SELECT data FROM events ORDER BY id")]


def _fully_masked(store, sender_id, events):
    """What the old whole-tracker masking writes for these raw events."""
    source = DialogueStateTracker.from_events(sender_id, list(events), DOMAIN.slots)
    return [e.as_dict() for e in store.masked(source).events]


async def _rasa_turn(store, sender_id, events):
    """One turn as Rasa's processor runs it: retrieve (masked), append raw events, save."""
    tracker = await store.retrieve(sender_id)
    if tracker is None:
        tracker = DialogueStateTracker(sender_id, DOMAIN.slots)
    for event in events:
        tracker.update(event)
    await store.save(tracker)
    return tracker


def _assert_no_raw(db, raw_values):
    raw = db.read_bytes().decode("latin-1")
    assert not [v for v in raw_values if v in raw]


def test_long_conversation_saved_turn_by_turn_masks_only_new_events(tmp_path):
    db = tmp_path / "tracker.db"
    store = _sql_store(db)
    conv, raw_values, kept = Conversation(), [], None
    for i in range(40):
        events, raw = conv.turn(i)
        raw_values += raw
        asyncio.run(_rasa_turn(store, "bob", events))
        if i:  # the kept masked tracker is extended in place, never rebuilt
            assert store._cache["bob"].tracker is kept
        kept = store._cache["bob"].tracker
        assert store._cache["bob"].covered == len(conv.log)

    rows = _rows(db)
    assert len(rows) == 40 * 5  # no duplicates
    assert rows == _fully_masked(store, "bob", conv.log)
    _assert_no_raw(db, raw_values)
    stored = asyncio.run(store.retrieve("bob"))
    assert stored is not kept  # callers never get the kept object
    assert stored.get_slot("phone") == store._masker.mask(raw_values[-2])
    assert stored.latest_message.text == store._masker.mask(conv.log[-5].text)


def test_same_tracker_object_saved_repeatedly(tmp_path):
    """Rasa may save the tracker it holds (raw old events) more than once in a turn."""
    db = tmp_path / "tracker.db"
    store = _sql_store(db)
    conv = Conversation()
    tracker = DialogueStateTracker("carol", DOMAIN.slots)
    for i in range(5):
        for event in conv.turn(i)[0]:
            tracker.update(event)
            asyncio.run(store.save(tracker))
        asyncio.run(store.save(tracker))
    assert _rows(db) == _fully_masked(store, "carol", conv.log)


def test_session_restart(tmp_path):
    db = tmp_path / "tracker.db"
    store = _sql_store(db)
    conv, raw_values = Conversation(), []
    for i in range(6):
        events, raw = conv.turn(i)
        raw_values += raw
        asyncio.run(_rasa_turn(store, "dan", events))
    # Rasa appends the new session to the tracker it retrieved, then saves
    asyncio.run(_rasa_turn(store, "dan", conv.session_start()))
    for i in range(6, 12):
        events, raw = conv.turn(i)
        raw_values += raw
        tracker = asyncio.run(_rasa_turn(store, "dan", events))
        # only the new session was retrieved (from its SessionStarted on)
        assert tracker.events[0].type_name == "session_started"

    rows = _rows(db)
    assert len(rows) == len(conv.log) == 12 * 5 + 3
    assert rows == _fully_masked(store, "dan", conv.log)
    _assert_no_raw(db, raw_values)
    stored = asyncio.run(store.retrieve("dan"))
    assert len(stored.events) == 2 + 6 * 5
    full = asyncio.run(store.retrieve_full_tracker("dan"))
    assert [e.as_dict() for e in full.events] == rows


def test_cache_miss_and_disabled_cache(tmp_path, shared_key):
    db = tmp_path / "tracker.db"
    conv = Conversation()
    first = _sql_store(db)
    for i in range(4):
        asyncio.run(_rasa_turn(first, "erin", conv.turn(i)[0]))
    fresh = _sql_store(db)  # e.g. after a restart: nothing kept, the retrieved tracker is masked
    assert "erin" not in fresh._cache
    asyncio.run(_rasa_turn(fresh, "erin", conv.turn(4)[0]))
    assert fresh._cache["erin"].covered == 25
    no_cache = _sql_store(db, masked_cache_size=0)
    for i in range(5, 8):
        asyncio.run(_rasa_turn(no_cache, "erin", conv.turn(i)[0]))
    assert not no_cache._cache
    rows = _rows(db)
    assert len(rows) == 8 * 5
    assert rows == _fully_masked(fresh, "erin", conv.log)


def test_stale_cache_of_another_replica(tmp_path, shared_key):
    """Two replicas share the database; each one's kept tracker goes stale in turn."""
    db = tmp_path / "tracker.db"
    conv = Conversation()
    a, b = _sql_store(db), _sql_store(db)
    for i in range(2):
        asyncio.run(_rasa_turn(a, "fay", conv.turn(i)[0]))
    kept = a._cache["fay"].tracker
    for i in range(2, 5):  # b serves the next turns; a's kept tracker is now behind
        asyncio.run(_rasa_turn(b, "fay", conv.turn(i)[0]))
    # the retrieved tracker still continues a's kept one: b's (masked) events are added to it
    asyncio.run(_rasa_turn(a, "fay", conv.turn(5)[0]))
    assert a._cache["fay"].tracker is kept and a._cache["fay"].covered == 30
    asyncio.run(_rasa_turn(b, "fay", conv.turn(6)[0]))  # b missed turn 5
    assert b._cache["fay"].covered == 35
    asyncio.run(_rasa_turn(b, "fay", conv.session_start()))
    for i in range(7, 13):
        asyncio.run(_rasa_turn(b, "fay", conv.turn(i)[0]))
    # a's kept tracker (30 events of the old session) is shorter than the retrieved new session,
    # but that does not continue it: everything is masked again
    asyncio.run(_rasa_turn(a, "fay", conv.turn(13)[0]))
    assert a._cache["fay"].tracker is not kept
    assert a._cache["fay"].covered == 2 + 7 * 5

    rows = _rows(db)
    assert len(rows) == len(conv.log)
    assert rows == _fully_masked(a, "fay", conv.log)


def test_cache_is_bounded_least_recently_used_first_out(tmp_path):
    store = _sql_store(tmp_path / "tracker.db", masked_cache_size=2)
    conv = Conversation()
    for sender in ("g1", "g2", "g1", "g3"):
        asyncio.run(_rasa_turn(store, sender, conv.turn(0)[0]))
    assert list(store._cache) == ["g1", "g3"]
    store.domain = DOMAIN
    assert not store._cache  # kept trackers were built with the old domain's slots
    with pytest.raises(ConfigError):
        _sql_store(tmp_path / "x.db", masked_cache_size=-1)


class SpyStore(InMemoryTrackerStore):
    """A real in-memory store that records what a Redis/Mongo-style store would serialise."""

    def __init__(self, domain):
        super().__init__(domain)
        self.states, self.serialised, self.lengths = [], [], []

    async def save(self, tracker):
        self.states.append(tracker.current_state(EventVerbosity.ALL))
        self.serialised.append(self.serialise_tracker(tracker))
        self.lengths.append(len(tracker.events))
        await super().save(tracker)


def test_whole_tracker_state_is_masked_for_serialising_stores(tmp_path):
    store = _sql_store(tmp_path / "tracker.db")
    spy = store._inner = SpyStore(DOMAIN)
    conv = Conversation()
    tracker = DialogueStateTracker("hal", DOMAIN.slots)
    raw_values = []
    for i in range(8):
        events, raw = conv.turn(i)
        raw_values += raw
        for event in events:
            tracker.update(event)
        asyncio.run(store.save(tracker))
        # same events, slots, latest message etc. as masking the whole tracker
        assert spy.lengths[-1] == len(tracker.events)
        assert spy.states[-1] == store.masked(tracker).current_state(EventVerbosity.ALL)
        state = spy.states[-1]
        assert state["slots"]["phone"] == store._masker.mask(raw[0])
        assert state["latest_message"]["text"].startswith("my number is [PHONE_")
        assert state["latest_message"]["entities"][0]["value"] == state["slots"]["phone"]
    dumped = json.dumps(spy.states) + "".join(spy.serialised)
    assert not [v for v in raw_values if v in dumped]
    stored = asyncio.run(store.retrieve("hal"))
    assert stored.get_slot("phone") == store._masker.mask(raw_values[-2])


class _Flaky:
    """An inner store that cannot be reached for its first ``failures`` calls."""

    def __init__(self, inner, failures: int, error: BaseException | None = None) -> None:
        import sqlalchemy.exc

        self.inner, self.failures, self.calls = inner, failures, 0
        self.error = error or sqlalchemy.exc.OperationalError(
            "SELECT", {}, ConnectionRefusedError("connection refused")
        )

    async def _maybe_fail(self) -> None:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise self.error

    async def save(self, tracker):
        await self._maybe_fail()
        await self.inner.save(tracker)

    async def retrieve(self, sender_id):
        await self._maybe_fail()
        return await self.inner.retrieve(sender_id)


def test_a_briefly_unreachable_store_is_retried_and_loses_nothing(tmp_path):
    store = _sql_store(tmp_path / "t.db", retry_seconds=5)
    store._inner = flaky = _Flaky(store._inner, failures=2)
    tracker = DialogueStateTracker.from_events("ann", [UserUttered("hello")], DOMAIN.slots)
    asyncio.run(store.save(tracker))
    flaky.failures = 2
    back = asyncio.run(store.retrieve("ann"))
    assert [e.text for e in back.events if isinstance(e, UserUttered)] == ["hello"]
    assert flaky.calls == 6


def test_a_store_down_longer_than_the_window_fails_the_turn_past_rasas_fail_safe(tmp_path):
    from rasa.core.tracker_store import FailSafeTrackerStore

    from components.errors import StoreUnavailable

    store = _sql_store(tmp_path / "t.db", retry_seconds=0.5)
    store._inner = _Flaky(store._inner, failures=10**6)
    fail_safe = FailSafeTrackerStore(store)  # how Rasa's agent wraps every store
    with pytest.raises(StoreUnavailable) as error:
        asyncio.run(fail_safe.retrieve("ann"))
    assert error.value.operation == "retrieve" and error.value.error == "OperationalError"
    tracker = DialogueStateTracker.from_events("ann", [UserUttered("hi")], DOMAIN.slots)
    with pytest.raises(StoreUnavailable):
        asyncio.run(fail_safe.save(tracker))
    assert asyncio.run(fail_safe.fallback_tracker_store.retrieve("ann")) is None  # no fork


def test_other_errors_are_not_retried(tmp_path):
    store = _sql_store(tmp_path / "t.db", retry_seconds=5)
    store._inner = flaky = _Flaky(store._inner, failures=1, error=ValueError("bad data"))
    with pytest.raises(ValueError):
        asyncio.run(store.retrieve("ann"))
    assert flaky.calls == 1


@pytest.mark.parametrize("bad", [-1, 51, "10", True])
def test_retry_seconds_is_validated(tmp_path, bad):
    with pytest.raises(ConfigError, match="retry_seconds"):
        _sql_store(tmp_path / "t.db", retry_seconds=bad)


class _RecordingBroker:
    """An event broker that keeps what it is given (the interface Rasa's stores call)."""

    def __init__(self) -> None:
        self.published: list[dict] = []

    def publish(self, event: dict, headers=None) -> None:
        self.published.append(event)

    def is_ready(self) -> bool:
        return True


def test_each_saved_event_is_published_once_without_reading_the_session_back(tmp_path):
    broker = _RecordingBroker()
    store = MaskingTrackerStore(
        DOMAIN,
        event_broker=broker,
        inner={"type": "SQL", "dialect": "sqlite", "db": str(tmp_path / "t.db")},
    )
    reads = []
    retrieve = store._inner.retrieve

    async def counting_retrieve(sender_id):
        reads.append(sender_id)
        return await retrieve(sender_id)

    store._inner.retrieve = counting_retrieve
    turns = [
        [UserUttered(f"call me on 1381234567{n}"), ActionExecuted("action_listen")]
        for n in range(5)
    ]
    for events in turns:
        asyncio.run(_rasa_turn(store, "ann", events))
    assert len(reads) == 5  # one retrieve per turn (the turn's own), none per save
    published = [e for e in broker.published if e["event"] == "user"]
    assert len(published) == 5 and len(broker.published) == 10
    assert all(e["sender_id"].startswith("sender_") for e in broker.published)
    assert "13812345670" not in json.dumps(broker.published)
    stored = [r for r in _rows(tmp_path / "t.db")]
    assert len(stored) == len(broker.published)


def test_a_save_not_preceded_by_a_retrieve_publishes_only_what_it_added(tmp_path):
    broker = _RecordingBroker()
    db = {"type": "SQL", "dialect": "sqlite", "db": str(tmp_path / "t.db")}
    first = MaskingTrackerStore(DOMAIN, event_broker=broker, inner=db)
    asyncio.run(_rasa_turn(first, "bo", [UserUttered("hi"), ActionExecuted("action_listen")]))
    other = MaskingTrackerStore(DOMAIN, event_broker=broker, inner=db)  # another replica
    tracker = asyncio.run(first.retrieve("bo"))
    tracker.update(UserUttered("again"))
    asyncio.run(other.save(tracker))  # never retrieved by `other`: it asks the store
    assert [e.get("text") for e in broker.published if e["event"] == "user"] == ["hi", "again"]


def test_a_retried_save_publishes_nothing_twice(tmp_path):
    broker = _RecordingBroker()
    store = MaskingTrackerStore(
        DOMAIN,
        event_broker=broker,
        inner={"type": "SQL", "dialect": "sqlite", "db": str(tmp_path / "t.db")},
        retry_seconds=5,
    )
    flaky = _Flaky(store._inner, failures=0)
    store._inner = flaky
    tracker = asyncio.run(store.retrieve("cy")) or DialogueStateTracker("cy", DOMAIN.slots)
    tracker.update(UserUttered("hello"))
    flaky.failures = 2
    asyncio.run(store.save(tracker))
    assert [e["event"] for e in broker.published] == ["user"]
