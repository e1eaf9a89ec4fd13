"""The masked tracker store (real SQLite, written by the masking wrapper) as SFT data."""

import asyncio
import json

from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from components.stores.tracker_store import MaskingTrackerStore
from training.llm.cli import main
from training.llm.export import export

PHONE = "13812345678"


def _store(tmp_path):
    db = tmp_path / "tracker.db"
    store = MaskingTrackerStore(
        Domain.empty(), inner={"type": "SQL", "dialect": "sqlite", "db": str(db)}
    )
    for sender, turns in {
        "alice": [("user", f"call me on {PHONE}"), ("bot", "Sure."), ("bot", f"We call {PHONE}."),
                  ("user", "thanks"), ("bot", "You're welcome!"), ("user", "bye")],
        "bob": [("user", "anyone there?")],  # no reply yet: nothing to learn from
    }.items():  # fmt: skip
        tracker = DialogueStateTracker(sender, [])
        for kind, text in turns:
            if kind == "user":
                tracker.update(UserUttered(text, {"name": "inform", "confidence": 1.0}))
            else:
                tracker.update(ActionExecuted("utter_x"))
                tracker.update(BotUttered(text))
        asyncio.run(store.save(tracker))
    return db


def test_export_writes_masked_chat_examples(tmp_path):
    db = _store(tmp_path)
    out = tmp_path / "convs.jsonl"
    counts = export(f"sqlite:///{db}", out)
    assert counts == {"conversations": 1, "turns": 4, "skipped": 1}
    text = out.read_text(encoding="utf-8")
    assert PHONE not in text and "[PHONE_" in text and "alice" not in text
    (row,) = [json.loads(line) for line in text.splitlines()]
    roles = [m["role"] for m in row["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant"]  # trailing "bye" cut
    assert row["messages"][2]["content"].startswith("Sure.\nWe call [PHONE_")
    assert row["task"] == "conversation"


def test_export_of_a_database_without_events_is_a_clear_error(tmp_path, capsys):
    import sqlite3

    db = tmp_path / "other.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    assert main(["export", "--url", f"sqlite:///{db}", "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "no 'events' table" in capsys.readouterr().err


def test_training_without_data_says_what_to_run(capsys):
    assert main(["train", "--data", "/nonexistent"]) == 2
    assert "finetune data" in capsys.readouterr().err
