"""The masked tracker store as chat-format SFT data: online conversations → offline training.

Reads the ``events`` table Rasa's SQL tracker store writes (SQLite or PostgreSQL behind
:class:`~components.stores.tracker_store.MaskingTrackerStore`, so personal data is already
tokens such as ``[PHONE_1d37a3d9]``), and writes one example per conversation: a system message,
then the customer's and the assistant's turns (consecutive bot messages joined). Every text is
masked once more on the way out (rules only: the store's tokens stay as they are), so a store
written without the masking wrapper does not leak either. The output is JSONL in the format of
:mod:`training.llm.data` (``task: conversation``); pass it to ``train --extra``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

from training.llm.data import Example

CONVERSATION_SYSTEM = (
    "You are the customer-service assistant of an online shop. Answer briefly and politely, "
    "and never invent order details, prices or policies."
)


def conversations(url: str, min_turns: int = 1) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """``(sender_id, [(role, text), ...])`` per conversation in the store at ``url``.

    Args:
        url: SQLAlchemy URL of the tracker store's database (``sqlite:///.kefu/tracker.db``,
            ``postgresql://user:pass@host/db``).
        min_turns: Conversations with fewer customer turns are skipped.
    """
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("events"):
                raise ValueError(
                    f"no 'events' table at {engine.url!r}: is it a Rasa SQL tracker store?"
                )
            rows = connection.execute(
                sa.text(
                    "SELECT sender_id, type_name, data FROM events "
                    "WHERE type_name IN ('user', 'bot') ORDER BY sender_id, id"
                )
            )
            current, turns = None, []
            for sender_id, type_name, data in rows:
                if sender_id != current:
                    if current is not None and sum(r == "user" for r, _ in turns) >= min_turns:
                        yield current, turns
                    current, turns = sender_id, []
                text = (json.loads(data or "{}").get("text") or "").strip()
                if not text:
                    continue
                role = "user" if type_name == "user" else "assistant"
                if turns and turns[-1][0] == role == "assistant":
                    turns[-1] = (role, f"{turns[-1][1]}\n{text}")
                else:
                    turns.append((role, text))
            if current is not None and sum(r == "user" for r, _ in turns) >= min_turns:
                yield current, turns
    finally:
        engine.dispose()


def export(url: str, out: Path, min_turns: int = 1) -> dict[str, int]:
    """Write the store's conversations to ``out`` (JSONL); returns counts.

    Conversations are cut after their last assistant turn (a trailing customer message has no
    reply to learn from); ``sender_id`` is not written.
    """
    from components.privacy.pii import PIIMasker

    masker = PIIMasker()
    counts = {"conversations": 0, "turns": 0, "skipped": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for n, (_, turns) in enumerate(conversations(url, min_turns), start=1):
            while turns and turns[-1][0] != "assistant":
                turns = turns[:-1]
            if not any(role == "user" for role, _ in turns):
                counts["skipped"] += 1
                continue
            messages = [{"role": "system", "content": CONVERSATION_SYSTEM}] + [
                {"role": role, "content": masker.mask(text, learned=False)} for role, text in turns
            ]
            handle.write(
                Example("conversation", "tracker_store", f"c{n}", messages).to_json() + "\n"
            )
            counts["conversations"] += 1
            counts["turns"] += len(turns)
            if n % 200 == 0:
                print(f"[export] {n} conversations", file=sys.stderr, flush=True)
    return counts
