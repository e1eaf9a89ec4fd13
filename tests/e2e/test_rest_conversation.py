"""End to end: a real action server and a real `rasa run --enable-api`, driven over REST."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import ROOT, rasa_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url} exited early:\n{log.read_text()[-4000:]}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} did not come up:\n{log.read_text()[-4000:]}")


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Servers:
    def __init__(self, rasa_url: str, home: Path, logs: dict[str, Path]) -> None:
        self.rasa_url, self.home, self.logs = rasa_url, home, logs

    def say(self, sender: str, text: str) -> list[dict]:
        response = requests.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def texts(self, sender: str, text: str) -> str:
        return "\n".join(m.get("text", "") for m in self.say(sender, text))


@pytest.fixture(scope="module")
def servers(trained_model, tmp_path_factory) -> Iterator[Servers]:
    home = tmp_path_factory.mktemp("e2e_home")
    env = {
        **os.environ,
        "KEFU_HOME": str(home),
        "KEFU_WARMUP": "1",
        "PYTHONUNBUFFERED": "1",
        "KEFU_VAULT_KEY": "e2e-test-vault-key-0123456789",
    }
    subprocess.run(
        [sys.executable, "-m", "knowledge", "build"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    action_port, rasa_port = free_port(), free_port()
    endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    endpoints["action_endpoint"]["url"] = f"http://127.0.0.1:{action_port}/webhook"
    endpoints["tracker_store"]["inner"]["db"] = str(home / "tracker.db")
    endpoints_file = home / "endpoints.yml"
    endpoints_file.write_text(yaml.safe_dump(endpoints))
    logs = {"actions": home / "actions.log", "rasa": home / "rasa.log"}
    procs = []
    try:
        procs.append(
            start(
                [rasa_cli(), "run", "actions", "--actions", "actions", "--port", str(action_port)],
                env,
                logs["actions"],
            )
        )
        procs.append(
            start(
                [
                    rasa_cli(),
                    "run",
                    "--enable-api",
                    "-m",
                    str(trained_model),
                    "--endpoints",
                    str(endpoints_file),
                    "--credentials",
                    "rasa_project/credentials.yml",
                    "--port",
                    str(rasa_port),
                    "-i",
                    "127.0.0.1",
                ],
                env,
                logs["rasa"],
            )
        )
        wait_until_up(f"http://127.0.0.1:{action_port}/health", procs[0], logs["actions"])
        wait_until_up(f"http://127.0.0.1:{rasa_port}/status", procs[1], logs["rasa"])
        yield Servers(f"http://127.0.0.1:{rasa_port}", home, logs)
    finally:
        for proc in procs:
            stop(proc)


def test_multi_turn_conversation(servers):
    sender = "e2e-customer"
    assert "Demo Shop" in servers.texts(sender, "hello") or servers.texts(sender, "hi")
    assert "order number" in servers.texts(sender, "where is my order?")
    status = servers.texts(sender, "KF100234")
    assert "KF100234" in status and "on its way" in status and "SF1402938475" in status

    refund = servers.texts(sender, "how long do refunds take?")
    assert "Approved refunds are issued within 3 working days" in refund
    assert "(refunds.md)" in refund

    fallback = servers.say(sender, "blorp zxqv wuzzle fnord")
    assert "human agent" in fallback[-1]["text"]
    assert fallback[-1]["buttons"][0]["payload"] == "/request_human"

    handoff = servers.texts(sender, "human please")
    assert "ticket T-" in handoff
    with sqlite3.connect(servers.home / "tickets.db") as conn:
        rows = conn.execute("SELECT sender_id, status FROM tickets").fetchall()
    assert rows == [(sender, "open")]


def test_order_id_in_first_message_and_unknown_order(servers):
    sender = "e2e-direct"
    status = servers.texts(sender, "where is order KF100555?")
    assert "out for delivery" in status and "JD Logistics" in status
    servers.texts(sender, "track my order")
    assert "could not find" in servers.texts(sender, "KF999999")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "refund " * 1500,
        "😀😀😀🙏",
        "我的 order KF100042 到哪了？",
        "/restart_typo",
        "<script>alert(1)</script>",
    ],
    ids=["empty", "blank", "10k-chars", "emoji", "mixed-zh-en", "bad-intent", "html"],
)
def test_bad_input_gets_a_reply(servers, text):
    reply = servers.say("e2e-bad-input", text)
    assert reply and all(m.get("text") or m.get("buttons") for m in reply)


def test_tracker_store_holds_the_conversation(servers):
    servers.say("e2e-store", "hello")
    with sqlite3.connect(servers.home / "tracker.db") as conn:
        count = conn.execute(
            "SELECT COUNT(*) FROM events WHERE sender_id = ?", ("e2e-store",)
        ).fetchone()[0]
    assert count > 0


PII = {
    "phone": "13812345678",
    "email": "wang.fang@example.cn",
    "id_card": "11010519491231002X",
    "card": "4111 1111 1111 1111",
}


def test_no_raw_personal_data_at_rest(servers):
    """Leak audit (reduced): 10 conversations seeded with personal data through real servers."""
    messages = [
        f"my phone is {PII['phone']}, where is my order?",
        f"you can email me at {PII['email']}",
        f"身份证号 {PII['id_card']}，我要投诉",
        f"I paid with card {PII['card']}, how long do refunds take?",
        "human please",
    ]
    for n in range(10):
        for text in messages[n % 2 :: 1 + n % 2]:
            servers.say(f"leak-audit-{n}", text)
    raw_db = (servers.home / "tracker.db").read_bytes().decode("utf-8", "ignore")
    logs = "".join(log.read_text() for log in servers.logs.values())
    for kind, value in PII.items():
        assert value not in raw_db, f"{kind} stored raw in the tracker store"
        assert value not in logs, f"{kind} written to a log"
    with sqlite3.connect(servers.home / "tracker.db") as conn:
        texts = [
            row[0]
            for row in conn.execute(
                "SELECT data FROM events WHERE sender_id = 'leak-audit-0' AND type_name = 'user'"
            )
        ]
    assert any("[PHONE_" in t for t in texts)


def test_servers_logged_no_tracebacks(servers):
    for name, log in servers.logs.items():
        assert "Traceback" not in log.read_text(), name
