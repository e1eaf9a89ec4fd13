"""The wrapper against a real SQLite tracker store: nothing raw reaches the database."""

import asyncio
import sqlite3

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from components.privacy.tracker_store import MaskingTrackerStore, main

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


def test_domain_updates_reach_the_inner_store(tmp_path):
    store = MaskingTrackerStore(
        None, inner={"type": "SQL", "dialect": "sqlite", "db": str(tmp_path / "t.db")}
    )
    store.domain = DOMAIN
    assert store._inner.domain is DOMAIN


def test_endpoint_check(tmp_path, capsys):
    good = tmp_path / "good.yml"
    good.write_text(
        "tracker_store:\n  type: components.privacy.tracker_store.MaskingTrackerStore\n"
    )
    assert main(["--check", str(good)]) == 0
    bad = tmp_path / "bad.yml"
    bad.write_text("tracker_store:\n  type: components.nope.MaskingTrackerStore\n")
    assert main(["--check", str(bad)]) == 1
    assert "silently" in capsys.readouterr().err
