"""Sender ids are personal data: only keyed sender tokens reach storage, the broker and logs."""

import asyncio
import json
import logging
import re
import sqlite3
import stat

import pytest
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from components.privacy import log_masking
from components.privacy.event_masking import mask_event
from components.privacy.pii import SENDER_KEY_FILE, PIIMasker
from components.privacy.recognisers import SENDER_TOKEN, find_pii
from components.privacy.vault import Vault
from components.stores.event_broker import MaskingEventBroker
from components.stores.tracker_store import MaskingTrackerStore

PHONE, EMAIL = "13812345678", "li.lei@example.cn"
KEY = "sender-test-key-0123456789"
DOMAIN = Domain.empty()


@pytest.fixture
def no_key(monkeypatch):
    monkeypatch.delenv("KEFU_VAULT_KEY", raising=False)


@pytest.fixture
def vault_key(monkeypatch):
    monkeypatch.setenv("KEFU_VAULT_KEY", KEY)


def test_sender_token_is_keyed_stable_and_idempotent(tmp_path):
    masker = PIIMasker(KEY)
    token = masker.sender_token(PHONE)
    assert re.fullmatch(r"sender_[0-9a-f]{16}", token) and SENDER_TOKEN.fullmatch(token)
    assert PIIMasker(KEY).sender_token(PHONE) == token  # another process, same key
    assert PIIMasker("other-key-0123456789").sender_token(PHONE) != token
    assert masker.sender_token(EMAIL) != token
    assert masker.sender_token(token) == token  # never masked twice
    vault = Vault(KEY, tmp_path / "vault.db")
    assert PIIMasker(vault=vault).sender_token(PHONE) == token
    assert vault.reveal(token) == PHONE
    assert vault.reveal_all(f"call back {token}") == f"call back {PHONE}"


def test_without_a_key_sender_tokens_survive_a_restart(no_key, kefu_home):
    first, second = PIIMasker(), PIIMasker()  # e.g. the Rasa server and the action server
    token = first.sender_token(PHONE)
    assert second.sender_token(PHONE) == token
    key_file = kefu_home / SENDER_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.mask(PHONE) != second.mask(PHONE)  # value tokens stay per-process one-way


def test_sender_tokens_are_never_taken_for_personal_data():
    token = "sender_13812345678abcde"  # its hex digits look like a mobile number
    assert SENDER_TOKEN.fullmatch(token)
    assert find_pii(f"conversation {token} saved") == []
    masker = PIIMasker(KEY)
    assert masker.mask(f"sender_id={token}") == f"sender_id={token}"


def test_event_masking_replaces_the_sender_id_and_its_copies_in_metadata():
    masker = PIIMasker(KEY)
    token = masker.sender_token(PHONE)
    event = {
        "sender_id": PHONE,
        "event": "user",
        "text": "hello",
        "metadata": {
            "from": {"id": int(PHONE), "is_bot": False},
            "chat": f"whatsapp:+86{PHONE}",
            "sender": PHONE,
        },
        # Rasa copies the message metadata into the parse data
        "parse_data": {"text": "hello", "metadata": {"chat": PHONE, "mail": EMAIL}},
    }
    masked = mask_event(masker, event)
    assert masked["sender_id"] == token
    assert masked["metadata"] == {
        "from": {"id": token, "is_bot": False},
        "chat": f"whatsapp:+86{token}",
        "sender": token,
    }
    assert masked["parse_data"]["metadata"] == {"chat": token, "mail": masker.mask(EMAIL)}
    assert PHONE not in json.dumps(masked) and EMAIL not in json.dumps(masked)
    assert event["sender_id"] == PHONE  # the caller's event is untouched
    # events of a tracker carry no sender_id of their own: the tracker's is passed in
    again = mask_event(masker, {"event": "session_started", "metadata": {"chat": PHONE}}, PHONE)
    assert again["metadata"] == {"chat": token}
    assert mask_event(masker, masked) == masked  # idempotent


def _store(db):
    return MaskingTrackerStore(DOMAIN, inner={"type": "SQL", "dialect": "sqlite", "db": str(db)})


def _turn(tracker, text):
    tracker.update(UserUttered(text, {"name": "greet", "confidence": 1.0}, metadata={"s": PHONE}))
    tracker.update(ActionExecuted("utter_greet"))
    tracker.update(BotUttered("hi"))
    tracker.update(ActionExecuted("action_listen"))


@pytest.mark.parametrize("sender", [PHONE, EMAIL, "+8613912345678"])
def test_tracker_store_never_holds_the_raw_sender_id(tmp_path, vault_key, sender):
    db = tmp_path / "tracker.db"
    store = _store(db)
    token = store._masker.sender_token(sender)
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    _turn(tracker, "hello")
    asyncio.run(store.save(tracker))

    stored = asyncio.run(store.retrieve(sender))
    assert stored.sender_id == sender  # Rasa gets its conversation back under the id it asked
    _turn(stored, "again")
    asyncio.run(store.save(stored))  # saved back: the same token, never a token of the token
    raw = db.read_bytes().decode("latin-1")
    assert sender not in raw and PHONE not in raw
    with sqlite3.connect(db) as conn:
        senders = {s for (s,) in conn.execute("SELECT DISTINCT sender_id FROM events")}
    assert senders == {token}
    assert len(asyncio.run(store.retrieve(sender)).events) == 8
    full = asyncio.run(store.retrieve_full_tracker(sender))
    assert full.sender_id == sender and len(full.events) == 8
    assert asyncio.run(store.retrieve(token)).sender_id == token  # a token works as a key too
    assert asyncio.run(store.keys()) == [sender]  # revealed from the vault


def test_keys_are_tokens_without_a_vault(tmp_path, no_key):
    store = _store(tmp_path / "tracker.db")
    tracker = DialogueStateTracker(EMAIL, DOMAIN.slots)
    _turn(tracker, "hello")
    asyncio.run(store.save(tracker))
    keys = list(asyncio.run(store.keys()))
    assert keys == [store._masker.sender_token(EMAIL)]
    assert asyncio.run(store.retrieve(keys[0])) is not None
    assert asyncio.run(store.retrieve(EMAIL)).sender_id == EMAIL


class SpyStore(InMemoryTrackerStore):
    """Records the trackers the wrapper hands to the inner store."""

    def __init__(self, domain):
        super().__init__(domain)
        self.saved = []

    async def save(self, tracker):
        self.saved.append((tracker.sender_id, json.dumps(self.serialise_tracker(tracker))))
        await super().save(tracker)


def test_the_inner_store_gets_the_token_and_the_cache_keeps_working(tmp_path, vault_key):
    store = _store(tmp_path / "tracker.db")
    spy = store._inner = SpyStore(DOMAIN)
    token = store._masker.sender_token(PHONE)
    tracker = DialogueStateTracker(PHONE, DOMAIN.slots)
    tracker.update(SessionStarted(metadata={"phone": PHONE}))
    kept = None
    for i in range(4):
        _turn(tracker, f"turn {i}")
        asyncio.run(store.save(tracker))
        assert store._cache[PHONE].covered == len(tracker.events)  # incremental, by sender id
        if kept is not None:
            assert store._cache[PHONE].tracker is kept
        kept = store._cache[PHONE].tracker
    assert kept.sender_id == token
    assert {sender for sender, _ in spy.saved} == {token}
    assert not [s for _, s in spy.saved if PHONE in s]
    stored = asyncio.run(store.retrieve(PHONE))
    assert stored.sender_id == PHONE and stored is not kept and kept.sender_id == token


def test_event_broker_publishes_the_same_token(tmp_path, vault_key):
    from rasa.core.brokers.broker import EventBroker
    from rasa.utils.endpoints import EndpointConfig

    config = EndpointConfig.from_dict(
        {
            "type": "components.stores.event_broker.MaskingEventBroker",
            "inner": {"type": "file", "path": str(tmp_path / "events.jsonl")},
        }
    )
    broker = asyncio.run(EventBroker.create(config))
    assert isinstance(broker, MaskingEventBroker)
    broker.publish({"sender_id": EMAIL, "event": "user", "text": "hi", "metadata": {"u": EMAIL}})
    broker.publish({"sender_id": PHONE, "event": "action", "name": "action_listen"})
    raw = (tmp_path / "events.jsonl").read_text()
    assert EMAIL not in raw and PHONE not in raw
    events = [json.loads(line) for line in raw.splitlines()]
    store = _store(tmp_path / "tracker.db")  # the tracker store's masker: the same tokens
    assert [e["sender_id"] for e in events] == [
        store._masker.sender_token(EMAIL),
        store._masker.sender_token(PHONE),
    ]
    assert events[0]["metadata"] == {"u": events[0]["sender_id"]}
    asyncio.run(broker.close())


@pytest.fixture
def root_handler():
    handler = logging.StreamHandler()
    handler.records = []
    handler.emit = handler.records.append
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def test_sender_ids_in_rasa_log_lines_are_masked(root_handler):
    masker = PIIMasker(KEY)
    log_masking.install(masker)
    rasa_log = logging.getLogger("rasa.core.lock_store")
    rasa_log.warning("Logging message for sender %s", PHONE)
    rasa_log.warning("Acquiring lock for conversation '%s'.", EMAIL)
    rasa_log.warning("Could not find tracker for conversation ID '%s'.", "telegram-42")
    rasa_log.warning('{"sender_id": "%s", "event": "processor.message.received"}', PHONE)
    rasa_log.warning("conversation ended after %d turns", 3)
    messages = [r.getMessage() for r in root_handler.records]
    assert not [m for m in messages if PHONE in m or EMAIL in m or "telegram-42" in m]
    token = r"sender_[0-9a-f]{16}"  # the filter installed first (another masker) did the work
    assert re.fullmatch(f"Logging message for sender {token}", messages[0])
    assert re.fullmatch(f"Acquiring lock for conversation '{token}'.", messages[1])
    assert re.fullmatch(f"Could not find tracker for conversation ID '{token}'.", messages[2])
    assert re.fullmatch(
        f'{{"sender_id": "{token}", "event": "processor.message.received"}}', messages[3]
    )
    assert messages[4] == "conversation ended after 3 turns"


@pytest.mark.parametrize(
    ("message", "sender"),
    [
        ("Logging message for sender %s", PHONE),
        ("for sender %s.", EMAIL),
        ("sender_id=%s done", "whatsapp:+8613812345678"),
        ("Starting a new session for conversation ID '%s'.", "alice"),
    ],
)
def test_the_log_filter_writes_the_tracker_store_token(message, sender):
    masker = PIIMasker(KEY)
    record = logging.makeLogRecord({"msg": message, "args": (sender,)})
    assert log_masking.PIILogFilter(masker).filter(record)
    assert record.getMessage() == message % masker.sender_token(sender)
