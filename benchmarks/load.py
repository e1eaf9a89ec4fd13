"""Load and fault benchmark: concurrent conversations against real servers on loopback.

    .venv/bin/python benchmarks/load.py --json benchmarks/results/load.json
    .venv/bin/python benchmarks/load.py --variants plain,kefu --conversations 5 --turns 10
    .venv/bin/python benchmarks/load.py --variants faults --json benchmarks/results/load_faults.json

Each variant starts its servers, warms them up, then runs ``--conversations`` concurrent
conversations of ``--turns`` turns each over REST (closed loop: a conversation sends its next
message when the reply arrived), bounded by ``--max-minutes`` per variant. A conversation
cycles through a mix of order lookups (with the phone check), knowledge questions in English and
Chinese, small talk, and fallbacks:

* ``plain``: plain Rasa — Rasa's default pipeline (DIET) and policies, template responses,
  Rasa's ``rest`` channel, a plain SQLite tracker store and file event broker; same action server;
* ``kefu``: Kefu in one process without LLM rephrasing (template NLG): Kefu's NLU, guard,
  guarded channel, masking SQLite tracker store and masking file broker;
* ``kefu_rephrase``: the same with the shipped NLG (the in-process fine-tuned SmolLM2
  rephrases the responses marked ``rephrase: true``);
* ``topology``: tests/topology/cluster.py — 2 replicas and 2 action servers behind nginx,
  PostgreSQL, Redis, RabbitMQ, the shared LLM server (rephrasing on);
* ``faults``: the topology under the same load while, one after another, an action server is
  killed (and restarted), the LLM server is killed (and restarted), and PostgreSQL, Redis and
  RabbitMQ are restarted.

The channels' per-sender rate limit is lifted (a closed-loop client is faster than a person).
Every turn carries a ``load_turn`` id in its metadata; afterwards the tracker store (and, for the
topology, the RabbitMQ queue) is searched for those ids: ``lost`` = turns answered but not stored,
``duplicated`` = ids stored more than once, ``failed_cleanly`` = turns answered with the apology
and not stored (a store was unreachable). Models are trained once into ``--models`` (reduced
epochs: inference costs the same).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import yaml
from common import ROOT, offline_env, percentile, table, write_json

offline_env()
sys.path.insert(0, str(ROOT))

from components.assistants import get_assistant  # noqa: E402
from deployment import leak_audit  # noqa: E402
from deployment.commands import fast_config, train_command  # noqa: E402
from deployment.servers import running_servers  # noqa: E402

#: One cycle of a conversation's messages (repeated to the number of turns).
SCRIPT = [
    "hello",
    "where is my order?",
    "KF100234",
    "13800138000",
    "how long do refunds take?",
    "thanks",
    "blorp zxqv wuzzle fnord",
    "no",
    "退款多久到账？",
    "what is your return policy?",
]
APOLOGY = "something went wrong on our side"
APOLOGY_ZH = "我们这边出了点问题"
UNTHROTTLED = {"rate_per_minute": 0}
PLAIN_CONFIG = """\
# Rasa 3.6's default configuration (what `rasa init` uses), epochs reduced for training time
recipe: default.v1
language: en
assistant_id: plain-rasa-baseline
pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
  - name: LexicalSyntacticFeaturizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: {epochs}
    constrain_similarities: true
  - name: EntitySynonymMapper
  - name: ResponseSelector
    epochs: {epochs}
    constrain_similarities: true
  - name: FallbackClassifier
    threshold: 0.3
    ambiguity_threshold: 0.1
policies:
  - name: MemoizationPolicy
  - name: RulePolicy
  - name: UnexpecTEDIntentPolicy
    max_history: 5
    epochs: {epochs}
  - name: TEDPolicy
    max_history: 5
    epochs: {epochs}
    constrain_similarities: true
"""


def log(message: str) -> None:
    print(f"[load] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ models
def train(models: Path, name: str, config: Path) -> Path:
    target = models / f"{name}.tar.gz"
    if target.is_file():
        return target
    log(f"training {name} (once; {config.name}) ...")
    started = time.monotonic()
    subprocess.run(train_command(models, name, config), cwd=ROOT, check=True, capture_output=True)
    log(f"trained {name} in {time.monotonic() - started:.0f} s")
    return target


def models_for(models: Path, epochs: int) -> dict[str, Path]:
    models.mkdir(parents=True, exist_ok=True)
    plain_config = models / "plain_config.yml"
    plain_config.write_text(PLAIN_CONFIG.format(epochs=epochs))
    return {
        "kefu": train(models, "kefu-load", fast_config(models / "kefu_config.yml")),
        "plain": train(models, "plain-load", plain_config),
    }


# ------------------------------------------------------------------------------ load
class Load:
    """Closed-loop conversations; records every turn."""

    def __init__(self, url: str, conversations: int, turns: int, max_seconds: float, tag: str):
        self.url, self.conversations, self.turns = url, conversations, turns
        self.deadline = time.monotonic() + max_seconds
        self.tag = tag
        self.records: list[dict] = []

    def sender(self, n: int) -> str:
        return f"load-{self.tag}-{n}"

    async def conversation(self, session, n: int) -> None:
        import aiohttp

        for t in range(self.turns):
            if time.monotonic() > self.deadline:
                return
            turn_id = f"{self.tag}:{n}:{t}"
            body = {
                "sender": self.sender(n),
                "message": SCRIPT[t % len(SCRIPT)],
                "metadata": {"load_turn": turn_id},
            }
            started = time.monotonic()
            record = {
                "id": turn_id,
                "sender": self.sender(n),
                "start": started,
                "message": body["message"],
            }
            try:
                async with session.post(
                    f"{self.url}/webhooks/rest/webhook",
                    json=body,
                    timeout=aiohttp.ClientTimeout(total=120),
                ) as reply:
                    record["status"] = reply.status
                    data = await reply.json(content_type=None) if reply.status == 200 else []
            except Exception as exc:  # a refused connection during a fault
                record["status"], data = type(exc).__name__, []
            record["latency"] = time.monotonic() - started
            text = " ".join(m.get("text") or "" for m in data if isinstance(m, dict))
            record["apology"] = APOLOGY in text or APOLOGY_ZH in text
            record["empty"] = not data
            self.records.append(record)

    async def run(self) -> float:
        import aiohttp

        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(
                *(self.conversation(session, n) for n in range(self.conversations))
            )
        return time.monotonic() - started


def run_load(url: str, args, tag: str, load: Load | None = None) -> tuple[Load, float, float]:
    """Run the load; return it, its wall time and the machine's CPU use (% of all cores)."""
    import psutil

    load = load or Load(url, args.conversations, args.turns, args.max_minutes * 60, tag)
    psutil.cpu_percent(None)
    wall = asyncio.run(load.run())
    return load, wall, psutil.cpu_percent(None)


def warm_up(url: str) -> None:
    import requests

    for n, text in enumerate(SCRIPT):
        requests.post(
            f"{url}/webhooks/rest/webhook",
            json={"sender": f"warmup-{n}", "message": text},
            timeout=120,
        )


# ------------------------------------------------------------------------------ accounting
def stored_ids_sqlite(db: Path, senders: list[str], masked: bool) -> Counter:
    keys = [leak_audit.stored_sender(s) if masked else s for s in senders]
    with sqlite3.connect(db) as conn:
        marks = ",".join("?" * len(keys))
        rows = conn.execute(
            f"SELECT data FROM events WHERE type_name = 'user' AND sender_id IN ({marks})", keys
        ).fetchall()
    return _ids(data for (data,) in rows)


def _ids(datas) -> Counter:
    ids: Counter = Counter()
    for data in datas:
        event = json.loads(data) if isinstance(data, (str, bytes)) else data
        turn = (event.get("metadata") or {}).get("load_turn")
        if turn:
            ids[turn] += 1
    return ids


def account(load: Load, stored: Counter, queue: Counter | None = None) -> dict:
    answered = [r for r in load.records if r["status"] == 200]
    lost = [r["id"] for r in answered if not r["apology"] and stored[r["id"]] == 0]
    failed_cleanly = [r["id"] for r in answered if r["apology"] and stored[r["id"]] == 0]
    result = {
        "turns_sent": len(load.records),
        "answered_200": len(answered),
        "errors": sum(1 for r in load.records if r["status"] != 200),
        "errors_by_status": dict(
            Counter(str(r["status"]) for r in load.records if r["status"] != 200)
        ),
        "apologies": sum(1 for r in answered if r["apology"]),
        "apologies_by_message": dict(Counter(r["message"] for r in answered if r["apology"])),
        "empty_replies": sum(1 for r in answered if r["empty"]),
        "empty_by_message": dict(Counter(r["message"] for r in answered if r["empty"])),
        "stored": sum(1 for n in stored.values() if n),
        "lost": len(lost),
        "duplicated": sum(1 for n in stored.values() if n > 1),
        "failed_cleanly": len(failed_cleanly),
        "stored_but_not_answered": sum(
            1 for r in load.records if r["status"] != 200 and stored[r["id"]]
        ),
    }
    if queue is not None:
        in_store = {i for i, n in stored.items() if n}
        result["broker_missing"] = len(in_store - {i for i, n in queue.items() if n})
        result["broker_duplicated"] = sum(1 for n in queue.values() if n > 1)
    return result


def latency(load: Load, wall: float, cpu: float) -> dict:
    values = [r["latency"] for r in load.records if r["status"] == 200]
    return {
        "p50_s": round(percentile(values, 50), 3) if values else None,
        "p95_s": round(percentile(values, 95), 3) if values else None,
        "p99_s": round(percentile(values, 99), 3) if values else None,
        "max_s": round(max(values), 3) if values else None,
        "throughput_turns_per_s": round(len(values) / wall, 2) if wall else None,
        "wall_s": round(wall, 1),
        "machine_cpu_percent": round(cpu, 1),
    }


# ------------------------------------------------------------------------------ variants
def channels(guarded: bool) -> dict:
    if not guarded:
        return {"rest": None}
    shipped = yaml.safe_load((get_assistant().credentials).read_text())
    shipped["components.channels.rest.GuardedRestInput"].update(UNTHROTTLED)
    return shipped


def without_nlg(endpoints: dict) -> dict:
    endpoints.pop("nlg", None)
    return endpoints


def plain_endpoints(endpoints: dict) -> dict:
    endpoints.pop("nlg", None)
    endpoints.pop("kefu", None)
    endpoints["tracker_store"] = endpoints["tracker_store"]["inner"]  # plain SQLite store
    endpoints["event_broker"] = endpoints["event_broker"]["inner"]  # plain file broker
    return endpoints


def single_process(variant: str, model: Path, args) -> dict:
    edit = {"plain": plain_endpoints, "kefu": without_nlg, "kefu_rephrase": None}[variant]
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        log(f"{variant}: starting the servers ...")
        with running_servers(
            model, home, edit_endpoints=edit, credentials=channels(variant != "plain")
        ) as servers:
            warm_up(servers.rasa_url)
            log(f"{variant}: {args.conversations} conversations x {args.turns} turns ...")
            load, wall, cpu = run_load(servers.rasa_url, args, variant)
            senders = [load.sender(n) for n in range(args.conversations)]
            stored = stored_ids_sqlite(home / "tracker.db", senders, masked=variant != "plain")
            return {**latency(load, wall, cpu), **account(load, stored)}


def topology(model: Path, args, faults: bool) -> dict:
    from deployment.topology import running_cluster

    credentials = channels(True)
    log("topology: starting PostgreSQL, Redis, RabbitMQ, nginx, 2 replicas, 2 action servers, LLM")
    with running_cluster(model, credentials=credentials) as cluster:
        warm_up(cluster.url)
        cluster.rabbitmq.drain()
        timeline: list[dict] = []
        stop = threading.Event()
        injector = None
        tag = "faults" if faults else "topology"
        # with faults, conversations go on until every fault is over (plus 30 s of recovery)
        turns = 10**6 if faults else args.turns
        load = Load(cluster.url, args.conversations, turns, args.max_minutes * 60, tag)
        if faults:
            injector = threading.Thread(
                target=inject_faults, args=(cluster, timeline, stop, load), daemon=True
            )
            injector.start()
        log(f"{tag}: {args.conversations} conversations ...")
        try:
            load, wall, cpu = run_load(cluster.url, args, tag, load)
        finally:
            stop.set()
            if injector is not None:
                injector.join()
        senders = [leak_audit.stored_sender(load.sender(n)) for n in range(args.conversations)]
        rows = cluster.postgres.sql(
            "SELECT data FROM events WHERE type_name = 'user' AND sender_id = ANY(%s)", senders
        )
        stored = _ids(data for (data,) in rows)
        queue: Counter = Counter()
        amqp_ids: dict[str, set] = {}
        deadline = time.monotonic() + 30  # events published after the last replies
        while True:
            for amqp_id, body in cluster.rabbitmq.drain_messages():
                for turn in _ids([body]) if b'"event": "user"' in body else ():
                    queue[turn] += 1
                    amqp_ids.setdefault(turn, set()).add(amqp_id)
            missing = {i for i, n in stored.items() if n} - set(queue)
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(2)
        result = {**latency(load, wall, cpu), **account(load, stored, queue)}
        # a repeat under the same AMQP message id is one a consumer can drop
        result["broker_repeats_new_id"] = sum(1 for ids in amqp_ids.values() if len(ids) > 1)
        began = min(r["start"] for r in load.records)
        if missing:  # when the missing turns were sent (seconds after the load started)
            result["broker_missing_sent_at_s"] = sorted(
                round(r["start"] - began, 1) for r in load.records if r["id"] in missing
            )
        if faults:
            result["faults"] = [
                {**fault_window(load, f), "at_s": round(f["start"] - began, 1)} for f in timeline
            ]
        return result


def inject_faults(cluster, timeline: list[dict], stop: threading.Event, load: Load) -> None:
    """One fault after another while the load runs (each with time to recover)."""

    def window(name: str, down, up, outage: float) -> None:
        if stop.wait(20):
            return
        start = time.monotonic()
        down()
        stop.wait(outage)
        up()
        timeline.append({"fault": name, "start": start, "end": time.monotonic()})
        log(f"fault {name}: {time.monotonic() - start:.1f} s")

    action = cluster.actions[0]
    window("kill one action server", action.kill, action.start, 10)
    window(
        "kill both action servers",
        lambda: [a.kill() for a in cluster.actions],
        lambda: [a.start() for a in cluster.actions],
        10,
    )
    window("kill the LLM server", cluster.llm.kill, cluster.llm.start, 15)
    window("restart PostgreSQL", cluster.postgres.stop, cluster.postgres.start, 3)
    window("PostgreSQL down 15 s", cluster.postgres.stop, cluster.postgres.start, 15)
    window("restart Redis", cluster.redis.stop, cluster.redis.start, 3)
    window("restart RabbitMQ", cluster.rabbitmq.stop, cluster.rabbitmq.start, 5)
    replica = cluster.replicas[0]
    window("kill one Rasa replica", replica.kill, replica.start, 5)
    load.deadline = min(load.deadline, time.monotonic() + 30)


def fault_window(load: Load, fault: dict) -> dict:
    turns = [r for r in load.records if fault["start"] <= r["start"] <= fault["end"] + 5]
    ok = [r["latency"] for r in turns if r["status"] == 200]
    return {
        "fault": fault["fault"],
        "seconds": round(fault["end"] - fault["start"], 1),
        "turns_during": len(turns),
        "errors": sum(1 for r in turns if r["status"] != 200),
        "apologies": sum(1 for r in turns if r["status"] == 200 and r["apology"]),
        "p95_s": round(percentile(ok, 95), 2) if ok else None,
        "max_s": round(max(ok), 2) if ok else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--variants", default="plain,kefu,kefu_rephrase,topology", help="comma-separated"
    )
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--max-minutes", type=float, default=8.0, help="per variant")
    parser.add_argument("--epochs", type=int, default=20, help="plain Rasa's training epochs")
    parser.add_argument(
        "--models", type=Path, default=ROOT / ".kefu" / "load_models", help="trained once here"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    known = {"plain", "kefu", "kefu_rephrase", "topology", "faults"}
    if not variants or set(variants) - known:
        print(f"error: --variants must be among {sorted(known)}", file=sys.stderr)
        return 2
    if args.conversations < 1 or args.turns < 1 or args.max_minutes <= 0:
        print("error: --conversations, --turns and --max-minutes must be positive", file=sys.stderr)
        return 2
    if {"topology", "faults"} & set(variants) and not shutil.which("nginx"):
        print(
            "error: the topology needs Debian's nginx, postgresql, redis-server and "
            "rabbitmq-server (see .ci/run)",
            file=sys.stderr,
        )
        return 2
    models = models_for(args.models, args.epochs)
    results: dict[str, dict] = {}
    for variant in variants:
        started = time.monotonic()
        if variant in ("topology", "faults"):
            results[variant] = topology(models["kefu"], args, faults=variant == "faults")
        else:
            model = models["plain" if variant == "plain" else "kefu"]
            results[variant] = single_process(variant, model, args)
        log(f"{variant}: done in {time.monotonic() - started:.0f} s: {results[variant]}")
    rows = [
        [
            v,
            r["turns_sent"],
            r["p50_s"],
            r["p95_s"],
            r["p99_s"],
            r["throughput_turns_per_s"],
            r["machine_cpu_percent"],
            r["errors"],
            r["lost"],
            r["duplicated"],
            r["failed_cleanly"],
        ]
        for v, r in results.items()
    ]
    print(
        table(
            [
                "variant",
                "turns",
                "p50 s",
                "p95 s",
                "p99 s",
                "turns/s",
                "CPU %",
                "errors",
                "lost",
                "duplicated",
                "failed cleanly",
            ],
            rows,
        )
    )
    ratios = {}
    if "plain" in results and "kefu" in results and results["plain"]["p95_s"]:
        ratios["kefu_p95_over_plain_p95"] = round(
            results["kefu"]["p95_s"] / results["plain"]["p95_s"], 2
        )
    write_json(
        args.json,
        {
            "measured": dt.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
            "conversations": args.conversations,
            "turns_per_conversation": args.turns,
            "max_minutes_per_variant": args.max_minutes,
            "script": SCRIPT,
            "results": results,
            **ratios,
        },
    )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
