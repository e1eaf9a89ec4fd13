"""Tracker store benchmark: cost of one save of MaskingTrackerStore vs conversation length.

    .venv/bin/python benchmarks/tracker_store.py --json benchmarks/results/tracker_store.json
    .venv/bin/python benchmarks/tracker_store.py --turns 10,100,1000 --repeats 9 --vault

For each conversation length (``--turns``; one turn = a user message with a phone number, an
e-mail and an address in text and entities, a slot set, an action, a bot reply with the phone and
e-mail, action_listen: 5 events), a SQLite tracker store (in a temporary folder) already holds
the conversation's earlier turns; then, as Rasa does per message, one turn is appended to the
retrieved tracker and the tracker saved. Timed (median of ``--repeats`` saves, each adding one
more turn):

* ``before``: the whole-tracker masking Kefu used before (every event masked, the tracker rebuilt
  with ``DialogueStateTracker.from_dict``, on every save), reimplemented here as the baseline;
* ``after``: ``MaskingTrackerStore`` as it is (only the events added since the last save are
  masked and applied to the masked tracker kept for the conversation);
* ``plain SQL store``: a ``SQLTrackerStore`` saving the same tracker without masking, i.e. the
  inner store's own cost, which neither variant can avoid;
* ``after, with an event broker``: ``after`` with a file event broker configured. Rasa's stores
  read the stored session back on every save (``TrackerStore.stream_events``) to find the new
  events, a cost that grows with the session; the wrapper now publishes the new events itself
  (their count is known from the turn's retrieve), so this stays flat too;
* ``plain SQL store with an event broker``: Rasa's own store and broker, for comparison (grows).

``--postgres`` runs every store on a real PostgreSQL server (Debian's, started in a temporary
folder as in tests/topology) instead of SQLite.

``masking`` is a save's time minus the time spent in the inner store's ``save``.

Masking is one-way (random key) unless ``--vault`` is given (then every masked value is also
written to the encrypted vault, as with ``KEFU_VAULT_KEY`` set).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import offline_env, table, write_json

offline_env()
os.environ.pop("KEFU_VAULT_KEY", None)

from rasa.core.brokers.file import FileEventBroker  # noqa: E402
from rasa.core.tracker_store import SQLTrackerStore  # noqa: E402
from rasa.shared.core.domain import Domain  # noqa: E402
from rasa.shared.core.events import (  # noqa: E402
    ActionExecuted,
    BotUttered,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker  # noqa: E402

from components.stores.tracker_store import MaskingTrackerStore  # noqa: E402

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
slots:
  phone:
    type: text
    mappings: [{type: custom}]
"""
)
EVENTS_PER_TURN = 5


class WholeTrackerMaskingStore(MaskingTrackerStore):
    """The baseline: Kefu's save before incremental masking (every event, every save)."""

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self._inner.save(self.masked(tracker))


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        self.now += 0.01
        return self.now


def turn(i: int, clock: Clock) -> list:
    phone, email = f"139{i:08d}", f"user{i}@example.cn"
    text = f"my number is {phone}, mail {email}, ship to {i % 900 + 1} Baker Street"
    start = text.index(phone)
    intent = {"name": "inform", "confidence": 0.98}
    entities = [{"entity": "phone", "value": phone, "start": start, "end": start + len(phone)}]
    parse = {"text": text, "intent": intent, "entities": entities}
    return [
        UserUttered(text, intent, entities, parse, timestamp=clock()),
        SlotSet("phone", phone, timestamp=clock()),
        ActionExecuted("utter_confirm", timestamp=clock()),
        BotUttered(f"We will call {phone} and mail {email}.", timestamp=clock()),
        ActionExecuted("action_listen", timestamp=clock()),
    ]


POSTGRES: dict | None = None  # the inner store's settings with --postgres


def build(kind: str, db: Path):
    if POSTGRES is not None:
        inner = {"type": "SQL", **POSTGRES}
    else:
        inner = {"type": "SQL", "dialect": "sqlite", "db": str(db)}
    if kind == "before":
        return WholeTrackerMaskingStore(DOMAIN, inner=inner)
    if kind == "after":
        return MaskingTrackerStore(DOMAIN, inner=inner)
    broker = FileEventBroker(str(db.with_suffix(".events.jsonl")))
    if kind == "broker":
        return MaskingTrackerStore(DOMAIN, event_broker=broker, inner=inner)
    plain = {("host" if k == "url" else k): v for k, v in inner.items() if k != "type"}
    return SQLTrackerStore(DOMAIN, event_broker=broker if kind == "sql_broker" else None, **plain)


async def measure(kind: str, turns: int, repeats: int, folder: Path) -> dict[str, float]:
    """Median ms of one save once ``turns`` turns are stored: in all, in the inner store."""
    store = build(kind, folder / f"{kind}-{turns}.db")
    clock = Clock()
    sender = f"bench-{kind}-{turns}"  # one PostgreSQL database holds every run
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    for i in range(turns):
        for event in turn(i, clock):
            tracker.update(event)
    await store.save(tracker)  # the earlier turns: stored (and, for "after", kept masked)
    tracker = await store.retrieve(sender)  # as Rasa gets it: masked, from the database

    inner = store if kind.startswith("sql") else store._inner
    inner_save, inner_times = inner.save, []

    async def timed_inner_save(masked: DialogueStateTracker) -> None:
        start = time.perf_counter()
        await inner_save(masked)
        inner_times.append(time.perf_counter() - start)

    inner.save = timed_inner_save
    times = []
    for r in range(repeats):
        for event in turn(turns + r, clock):
            tracker.update(event)
        start = time.perf_counter()
        await store.save(tracker)
        times.append(time.perf_counter() - start)
    check = await store.retrieve(sender)
    stored = len(check.events) if check else 0
    expected = (turns + repeats) * EVENTS_PER_TURN
    if stored != expected:
        raise RuntimeError(f"{kind}: {stored} events stored, expected {expected}")
    return {
        "total": statistics.median(times) * 1000,
        "inner": statistics.median(inner_times) * 1000,
        "masking": statistics.median(t - i for t, i in zip(times, inner_times, strict=True)) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", default="10,50,100,200,400,800", help="conversation lengths")
    parser.add_argument("--repeats", type=int, default=9, help="saves timed per length")
    parser.add_argument("--vault", action="store_true", help="mask reversibly, with a vault")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="where the SQLite files go (default: /dev/shm, so disk syncs do not drown the CPU)",
    )
    parser.add_argument("--postgres", action="store_true", help="on a real PostgreSQL server")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    lengths = [int(t) for t in args.turns.split(",")]
    kinds = ("before", "after", "sql", "broker", "sql_broker")
    rows, results = [], []
    with contextlib.ExitStack() as stack:
        if args.postgres:
            stack.enter_context(_postgres())
        _run(args, lengths, kinds, rows, results)
    headers = [
        "turns",
        "events stored",
        "before: ms/save",
        "before: masking",
        "after: ms/save",
        "after: masking",
        "after: inner SQL save",
        "plain SQL store: ms/save",
        "after, with an event broker",
        "plain SQL store, with an event broker",
    ]
    print(table(headers, rows))
    write_json(
        args.json,
        {
            "measured": dt.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
            "database": "postgresql (Debian, loopback TCP)" if args.postgres else "sqlite",
            "events_per_turn": EVENTS_PER_TURN,
            "repeats": args.repeats,
            "vault": args.vault,
            "database_folder": str(args.dir or tempfile.gettempdir()),
            "statistic": "median ms of one save (one new turn each); masking = save - inner save",
            "rows": results,
        },
    )
    return 0


@contextlib.contextmanager
def _postgres():
    """A PostgreSQL server for the run (tests/topology/cluster.py's), stopped afterwards."""
    global POSTGRES
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from deployment.topology import PG_PASSWORD, Postgres

    base = Path(tempfile.mkdtemp(prefix="kefu-bench-pg-"))
    base.chmod(0o755)
    server = Postgres(base)
    print("[tracker_store] starting PostgreSQL ...", file=sys.stderr, flush=True)
    server.start()
    POSTGRES = {
        "dialect": "postgresql",
        "url": "127.0.0.1",
        "port": server.port,
        "db": "kefu",
        "username": "kefu",
        "password": PG_PASSWORD,
    }
    try:
        yield
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def _run(args, lengths, kinds, rows, results) -> None:
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        os.environ["KEFU_HOME"] = folder
        if args.vault:
            os.environ["KEFU_VAULT_KEY"] = "benchmark-vault-key-0123456789"
        asyncio.run(measure("after", 2, 2, Path(folder)))  # warm-up, not reported
        step, total = 0, len(lengths) * len(kinds)
        for turns in lengths:
            ms = {}
            for kind in kinds:
                step += 1
                ms[kind] = asyncio.run(measure(kind, turns, args.repeats, Path(folder)))
                print(
                    f"[{step}/{total}] {turns} turns, {kind}: {ms[kind]['total']:.2f} ms per save "
                    f"(masking {ms[kind]['masking']:.2f} ms)",
                    file=sys.stderr,
                    flush=True,
                )
            before, after, sql, broker = ms["before"], ms["after"], ms["sql"], ms["broker"]
            sql_broker = ms["sql_broker"]
            events = turns * EVENTS_PER_TURN
            rows.append(
                [
                    turns,
                    events,
                    before["total"],
                    before["masking"],
                    after["total"],
                    after["masking"],
                    after["inner"],
                    sql["total"],
                    broker["total"],
                    sql_broker["total"],
                ]
            )
            results.append(
                {
                    "turns": turns,
                    "events_stored": events,
                    "before_ms": round(before["total"], 3),
                    "before_masking_ms": round(before["masking"], 3),
                    "after_ms": round(after["total"], 3),
                    "after_masking_ms": round(after["masking"], 3),
                    "after_inner_sql_ms": round(after["inner"], 3),
                    "sql_alone_ms": round(sql["total"], 3),
                    "after_with_event_broker_ms": round(broker["total"], 3),
                    "sql_with_event_broker_ms": round(sql_broker["total"], 3),
                }
            )


if __name__ == "__main__":
    sys.exit(main())
