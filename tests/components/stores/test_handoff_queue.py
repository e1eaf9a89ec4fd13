"""The SQLite handoff queue: enqueue, drain, nothing raw in it."""

import sqlite3
import threading

from components.services import get_services
from components.stores import handoff_queue
from components.stores.handoff_queue import HandoffRecord, drain, enqueue, pending


def test_enqueue_drain_round_trip(tmp_path):
    path = tmp_path / "queue.db"
    first = HandoffRecord("[SENDER_1]", "action_failed", "action_handoff", 1.5, "zh")
    second = HandoffRecord("[SENDER_2]", "action_failed", "action_lookup_order", 2.5, "en", "web")
    assert enqueue(first, path) == 1 and enqueue(second, path) == 2
    assert pending(path) == 2
    drained = drain(path)
    assert [r.id for r in drained] == [1, 2]
    assert drained[0] == HandoffRecord("[SENDER_1]", "action_failed", "action_handoff", 1.5,
                                       "zh", "rest", id=1)  # fmt: skip
    assert drained[1].channel == "web" and drained[1].action == "action_lookup_order"
    assert drain(path) == [] and pending(path) == 0
    assert enqueue(first, path) == 3  # ids are never reused


def test_default_path_is_under_kefu_home(kefu_home):
    assert handoff_queue.default_path() == kefu_home / "handoff_queue.db"
    assert drain() == [] and pending() == 0  # no file yet: nothing, and nothing created
    assert not (kefu_home / "handoff_queue.db").exists()
    enqueue(HandoffRecord("[SENDER_x]", "action_failed", "action_handoff"))
    records = drain()
    assert len(records) == 1 and records[0].timestamp > 0 and records[0].language == "en"


def test_concurrent_drains_return_each_record_once(tmp_path):
    path = tmp_path / "queue.db"
    for n in range(200):
        enqueue(HandoffRecord(f"[SENDER_{n}]", "action_failed", "action_handoff"), path)
    results, errors = [], []

    def worker():
        try:
            results.append(drain(path))
        except sqlite3.Error as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = sorted(r.id for batch in results for r in batch)
    assert ids == list(range(1, 201))


def test_sender_token_is_the_tracker_stores_conversation_token(monkeypatch):
    monkeypatch.setenv("KEFU_VAULT_KEY", "handoff-test-vault-key-0123456789")
    pii = get_services().pii
    token = handoff_queue.sender_token("wx-openid-123456")
    assert "123456" not in token and token == handoff_queue.sender_token("wx-openid-123456")
    assert token == pii.sender_token("wx-openid-123456")  # the tracker store's conversation id
    assert pii.vault.reveal(token) == "wx-openid-123456"
