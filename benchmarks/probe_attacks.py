"""The hardening probe's attacks (second pass): each one tried against a running deployment.

Used by ``benchmarks/probe.py`` after its load (or alone with ``--attacks-only``). Every case
returns ``{"case", "expected", "observed", "ok"}``; the probe writes them to its JSON under
``attacks`` and prints them as a table. The cases are the findings of the second hardening
issue: action-server client errors, the verification lock across sender ids, the ticket storm,
a form interrupted by an outage, secrets on command lines, socket.io origins, deep metadata,
file modes under ``KEFU_HOME``, the API token's forms and loopback addresses in the logs.
"""

from __future__ import annotations

import json
import re
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import requests

from deployment.servers import (
    ACTION_SECRET,
    API_TOKEN,
    SESSION_SECRET,
    VAULT_KEY,
    Servers,
)

ORDER_ID = "KF100234"
RIGHT_PHONE = "13800138000"
LOCKED_EN = "I could not verify order"
ASKS_CONTACT_ZH = "下单时留的手机号或邮箱"
SECRET_HEADER = "X-Kefu-Action-Secret"


def _case(case: str, expected: str, observed: object, ok: bool) -> dict:
    return {"case": case, "expected": expected, "observed": observed, "ok": bool(ok)}


def _post(servers: Servers, sender: str, text: str, metadata: object = None) -> requests.Response:
    body: dict = {"sender": sender, "message": text}
    if metadata is not None:
        body["metadata"] = metadata
    return requests.post(f"{servers.rasa_url}/webhooks/rest/webhook", json=body, timeout=120)


def _texts(reply: requests.Response) -> str:
    try:
        return "\n".join(m.get("text", "") for m in reply.json())
    except ValueError:
        return ""


def action_server_errors(servers: Servers) -> list[dict]:
    """Client errors at the action server are 4xx with a JSON body, never 500."""
    secret = {SECRET_HEADER: ACTION_SECRET}
    base = servers.action_url
    tries = {
        "GET /nonexistent": lambda: requests.get(f"{base}/nonexistent", timeout=10),
        "GET /webhook (secret)": lambda: requests.get(
            f"{base}/webhook", headers=secret, timeout=10
        ),
        "POST /webhook non-JSON (secret)": lambda: requests.post(
            f"{base}/webhook", data=b"not json", headers=secret, timeout=10
        ),
    }
    for variant in ("//webhook", "/Webhook", "/%77ebhook", "/./webhook"):
        tries[f"POST {variant} (no secret)"] = lambda v=variant: requests.post(
            base + v, json={"next_action": "action_handoff"}, timeout=10
        )
    observed = {}
    for name, call in tries.items():
        reply = call()
        try:
            shape = "error" in reply.json()
        except ValueError:
            shape = False
        observed[name] = f"{reply.status_code}{'' if shape else ' (no JSON error)'}"
    ok = all(v.split()[0] in ("400", "401", "404", "405") for v in observed.values())
    return [_case("action server client errors", "4xx JSON, no 500", observed, ok)]


def verification_lock(servers: Servers, senders: int = 6) -> list[dict]:
    """Wrong contacts from rotating sender ids lock the order for every conversation."""
    for n in range(senders):
        sender = f"attack-rotate-{n:02d}"
        _post(servers, sender, "where is my order?")
        _post(servers, sender, ORDER_ID)
        _post(servers, sender, f"1390013{n:04d}")  # a wrong phone each time
    victim = "attack-rotate-final"
    _post(servers, victim, "where is my order?")
    _post(servers, victim, ORDER_ID)
    reply = _texts(_post(servers, victim, RIGHT_PHONE))
    locked = LOCKED_EN in reply
    return [
        _case(
            f"verification lock across {senders} rotated sender ids",
            "the right phone from a new sender is refused while the order is locked",
            "locked" if locked else "verified",
            locked,
        )
    ]


def outage(servers: Servers, conversations: int = 3, handoffs: int = 3) -> list[dict]:
    """Handoffs and a half-filled form during an action-server outage, then the restart."""
    form = "attack-outage-form"
    _post(servers, form, "我的订单到哪了")
    _post(servers, form, ORDER_ID)  # the form now asks for the contact
    servers.stop_actions()
    try:
        for c in range(conversations):
            for _ in range(handoffs):
                _post(servers, f"attack-storm-{c}", "human please")
        _post(servers, form, RIGHT_PHONE)  # lost: the validation action is down
    finally:
        servers.start_actions()
    reply = _texts(_post(servers, form, f"我的订单{ORDER_ID}到哪了"))
    tickets = _open_tickets(servers.home / "tickets.db")
    # the storm's conversations, plus the form's (its failed turn queued a handoff too)
    storm_ok = tickets["max_per_conversation_and_reason"] == 1 and (
        conversations <= tickets["conversations"] <= conversations + 1
    )
    return [
        _case(
            f"ticket storm ({conversations} conversations x {handoffs} handoffs in an outage)",
            "one open ticket per conversation and reason",
            tickets,
            storm_ok,
        ),
        _case(
            "a form interrupted by the outage",
            "the next order question asks for the contact again (no attempt burned)",
            "asks for the contact" if ASKS_CONTACT_ZH in reply else reply[:80],
            ASKS_CONTACT_ZH in reply,
        ),
    ]


def _open_tickets(db: Path) -> dict:
    """Open tickets, the conversations they are for, the most for one conversation and reason."""
    if not db.is_file():
        return {"tickets": 0, "conversations": 0, "max_per_conversation_and_reason": 0}
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT sender_id, COUNT(*) FROM tickets WHERE status = 'open' "
            "GROUP BY sender_id, reason"
        ).fetchall()
    return {
        "tickets": sum(n for _, n in rows),
        "conversations": len({sender for sender, _ in rows}),
        "max_per_conversation_and_reason": max((n for _, n in rows), default=0),
    }


def secrets_on_command_lines() -> list[dict]:
    """No command line holds the API token, the action or session secret, or the vault key."""
    secrets = {
        "API token": API_TOKEN,
        "action secret": ACTION_SECRET,
        "session secret": SESSION_SECRET,
        "vault key": VAULT_KEY,
    }
    seen = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        seen |= {name for name, value in secrets.items() if value in text}
    return [_case("secrets in /proc/*/cmdline", "none", sorted(seen) or "none", not seen)]


def socketio_origins(servers: Servers) -> list[dict]:
    """A page from another origin gets no socket.io connection; an allowed one does."""
    results = {}
    for origin in ("https://evil.example", "http://localhost:5005"):
        url = f"{servers.rasa_url}/socket.io/"
        params = {"EIO": "4", "transport": "polling"}
        headers = {"Origin": origin}
        opened = requests.get(url, params=params, headers=headers, timeout=10)
        if opened.status_code != 200 or not opened.text.startswith("0"):
            results[origin] = f"handshake {opened.status_code}"
            continue
        params["sid"] = json.loads(opened.text[1:])["sid"]
        requests.post(url, params=params, headers=headers, data="40", timeout=10)
        packets = requests.get(url, params=params, headers=headers, timeout=10).text
        results[origin] = "connected" if "40{" in packets else "refused"
    ok = results["https://evil.example"] != "connected" and (
        results["http://localhost:5005"] == "connected"
    )
    return [_case("socket.io Origin check", "evil refused, localhost connected", results, ok)]


def deep_metadata(servers: Servers) -> list[dict]:
    """Metadata nested 500 deep is a 400, not a lost turn."""
    nested: object = "x"
    for _ in range(500):
        nested = {"a": nested}
    reply = _post(servers, "attack-metadata", "hello", metadata=nested)
    return [
        _case("REST metadata 500 levels deep", "400", reply.status_code, reply.status_code == 400)
    ]


def file_modes(home: Path) -> list[dict]:
    """Every file under KEFU_HOME is 0600 and every folder 0700."""
    loose = []
    for path in [home, *home.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            loose.append(f"{path.relative_to(home) if path != home else '.'} {mode:o}")
    return [
        _case("file modes under KEFU_HOME", "0600 files, 0700 folders", loose or "all", not loose)
    ]


def token_forms(servers: Servers) -> list[dict]:
    """Rasa 3.6 takes the API token as ?token= only (Bearer needs a JWT): as documented."""
    url = f"{servers.rasa_url}/status"
    query = requests.get(url, params={"token": API_TOKEN}, timeout=10).status_code
    bearer = requests.get(
        url, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10
    ).status_code
    return [
        _case(
            "API token forms",
            "?token= 200; plain Bearer 401 (Rasa 3.6 reads Bearer as a JWT)",
            {"?token=": query, "Bearer": bearer},
            query == 200 and bearer == 401,
        )
    ]


def loopback_in_logs(servers: Servers) -> list[dict]:
    """The deployment's own loopback endpoints stay readable in its logs."""
    text = "".join(p.read_text(encoding="utf-8", errors="replace") for p in servers.logs.values())
    masked = len(re.findall(r"\[IP_[0-9a-f]+\]", text))
    plain = text.count("127.0.0.1")
    return [
        _case(
            "loopback addresses in the logs",
            "readable, not [IP_...]",
            {"127.0.0.1": plain, "[IP_...]": masked},
            plain > 0 and masked == 0,
        )
    ]


#: The cases in the order they run (the outage restarts the action server: it runs last but
#: one; the file modes are read after everything wrote its files).
CASES: list[tuple[str, Callable[[Servers], list[dict]]]] = [
    ("action server errors", action_server_errors),
    ("verification lock", verification_lock),
    ("secrets", lambda servers: secrets_on_command_lines()),
    ("socket.io origins", socketio_origins),
    ("deep metadata", deep_metadata),
    ("token forms", token_forms),
    ("outage", outage),
    ("loopback in logs", loopback_in_logs),
    ("file modes", lambda servers: file_modes(servers.home)),
]


def run_all(servers: Servers, log: Callable[[str], None]) -> list[dict]:
    """Every case against ``servers``; a case that raises is recorded as failed, not fatal."""
    results = []
    for name, case in CASES:
        log(f"[probe] attack: {name} ...")
        try:
            results += case(servers)
        except Exception as exc:  # the probe reports, it does not stop
            results.append(_case(name, "runs", f"{type(exc).__name__}: {exc}"[:200], False))
    return results
