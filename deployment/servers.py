"""A local deployment of one assistant: an action server and `rasa run` on free loopback ports.

Used by the end-to-end tests, the leak audit and the load and probe benchmarks.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests
import yaml

from components.assistants import ASSISTANT_ENV, get_assistant
from deployment.commands import (
    ACTIONS_MAX_BODY_BYTES,
    MAX_BODY_BYTES,
    ROOT,
    action_server_command,
    action_server_env,
    build_knowledge_index,
    rasa_server_command,
    rasa_server_env,
)

__all__ = [
    "ACTIONS_MAX_BODY_BYTES",
    "MAX_BODY_BYTES",
    "ROOT",
    "Servers",
    "action_server_command",
    "action_server_env",
    "free_port",
    "rasa_server_command",
    "rasa_server_env",
    "running_servers",
]


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
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


def start(cmd: list[str], env: dict, log: Path, mode: str = "w") -> subprocess.Popen:
    """Start ``cmd`` in its own session, its output in ``log`` (owner-only, as KEFU_HOME's files).

    Args:
        cmd: The command line.
        env: Its environment.
        log: The log file (created 0600).
        mode: ``w`` (a new log) or ``a`` (append, after a restart).
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    with os.fdopen(os.open(log, flags, 0o600), mode) as output:
        return subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=0o077,
        )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


VAULT_KEY = "e2e-test-vault-key-0123456789"
ACTION_SECRET = "e2e-test-action-secret-0123456789"
API_TOKEN = "e2e-test-api-token-0123456789"
SESSION_SECRET = "e2e-test-session-secret-0123456789"
SLACK_SIGNING_SECRET = "e2e-test-slack-signing-secret"
SLACK_TOKEN = "xoxb-e2e-test-token"
TELEGRAM_TOKEN = "123456:e2e-test-telegram-token"
TELEGRAM_SECRET = "e2e-test-telegram-secret"


def platform_credentials(platform_api: str) -> dict:
    """The Slack and Telegram blocks of credentials.yml, their APIs faked at ``platform_api``."""
    return {
        "components.channels.slack.GuardedSlackInput": {
            "slack_token": SLACK_TOKEN,
            "slack_signing_secret": SLACK_SIGNING_SECRET,
            "use_threads": True,
            "api_url": f"{platform_api}/slack/api/",
        },
        "components.channels.telegram.GuardedTelegramInput": {
            "access_token": TELEGRAM_TOKEN,
            "verify": "kefu_test_bot",
            "webhook_url": "https://bot.example.test/webhooks/telegram/webhook",
            "secret_token": TELEGRAM_SECRET,
            "api_url": f"{platform_api}/telegram",
        },
    }


class Servers:
    """Talks to the running Rasa server over its REST channel; knows where everything is."""

    def __init__(
        self,
        rasa_url: str,
        home: Path,
        logs: dict[str, Path],
        action_url: str = "",
        procs: dict[str, subprocess.Popen] | None = None,
        action_cmd: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.rasa_url, self.home, self.logs = rasa_url, home, logs
        self.action_url = action_url
        self.procs = procs or {}
        self.action_cmd, self.env = action_cmd or [], env or {}
        self.api_token = API_TOKEN
        self.tracker_db = home / "tracker.db"
        self.events = home / "events.jsonl"

    def stop_actions(self) -> None:
        """Stop the action server (to test what customers get while it is down)."""
        stop(self.procs["actions"])

    def start_actions(self) -> None:
        """Start the action server again on its port and wait until it answers."""
        with self.logs["actions"].open("a") as log:
            log.write("---- restarted by the test ----\n")
        proc = start(self.action_cmd, self.env, self.logs["actions"], mode="a")
        self.procs["actions"] = proc
        wait_until_up(f"{self.action_url}/health", proc, self.logs["actions"])

    def say(self, sender: str, text: str) -> list[dict]:
        """Send ``text`` as ``sender`` over the REST channel; the bot's messages."""
        response = requests.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def texts(self, sender: str, text: str) -> str:
        """The texts of the bot's replies to ``text``, one per line."""
        return "\n".join(m.get("text", "") for m in self.say(sender, text))


@contextlib.contextmanager
def running_servers(
    model: Path,
    home: Path,
    debug: bool = False,
    platform_api: str | None = None,
    edit_endpoints: Callable[[dict], dict] | None = None,
    credentials: dict | None = None,
    assistant: str | None = None,
) -> Iterator[Servers]:
    """Build the knowledge index, start both servers on free ports, stop them afterwards.

    Conversations go to a masking SQLite tracker store and a masking file event broker under
    ``home``; ``KEFU_VAULT_KEY`` is set so masked values can be revealed from the vault. With
    ``platform_api`` (the URL of :class:`tests.e2e.platform_api.PlatformAPI`), the Slack and
    Telegram channels are enabled too, their API calls going there. ``edit_endpoints`` changes
    the endpoints (a dict, ``${...}`` left unexpanded) and ``credentials`` replaces the
    channels (the load benchmark's plain Rasa and its unthrottled variants). ``assistant``:
    the assistant served (default: ``KEFU_ASSISTANT``'s, else the shop); ``model`` must be
    trained on it.
    """
    chosen = get_assistant(assistant)
    action_port, rasa_port = free_port(), free_port()
    env = {
        **os.environ,
        "KEFU_HOME": str(home),
        "KEFU_WARMUP": "1",
        "PYTHONUNBUFFERED": "1",
        "KEFU_VAULT_KEY": VAULT_KEY,
        # non-default ports through the one source of truth endpoints.yml reads
        "KEFU_ACTIONS_URL": f"http://127.0.0.1:{action_port}/webhook",
        "KEFU_ACTION_SECRET": ACTION_SECRET,
        "SANIC_REQUEST_MAX_SIZE": str(MAX_BODY_BYTES),
        "SANIC_HOST": "127.0.0.1",  # the action server, as make run/serve start it
        "KEFU_SESSION_SECRET": SESSION_SECRET,
        ASSISTANT_ENV: chosen.name,
    }
    build_knowledge_index(env)
    # edited as text: a YAML round trip in a process that imported rasa would expand the
    # ${...} variables with this process's values instead of the servers'
    shipped = (ROOT / "endpoints.yml").read_text()
    assert 'db: ".kefu/tracker.db"' in shipped and "\nevent_broker:" not in shipped
    broker = {
        "event_broker": {
            "type": "components.stores.event_broker.MaskingEventBroker",
            "inner": {"type": "file", "path": str(home / "events.jsonl")},
        }
    }
    endpoints_file = home / "endpoints.yml"
    text = (
        shipped.replace('db: ".kefu/tracker.db"', f"db: {json.dumps(str(home / 'tracker.db'))}")
        + "\n"
        + yaml.safe_dump(broker)
    )
    if edit_endpoints is not None:
        text = yaml.safe_dump(edit_endpoints(yaml.safe_load(text)), sort_keys=False)
    endpoints_file.write_text(text)
    credentials_file = home / "credentials.yml"
    credentials_file.write_text(
        yaml.safe_dump(credentials)
        if credentials is not None
        else chosen.credentials.read_text()
        + "\n"
        + (yaml.safe_dump(platform_credentials(platform_api)) if platform_api else "")
    )
    logs = {"actions": home / "actions.log", "rasa": home / "rasa.log"}
    flags = ["--debug"] if debug else []
    procs = []
    action_cmd = action_server_command(action_port, *flags, assistant=chosen.name)
    servers = None
    try:
        action_env = action_server_env(env, chosen.name)
        procs.append(start(action_cmd, action_env, logs["actions"]))
        procs.append(
            start(
                rasa_server_command(
                    model, endpoints_file, credentials_file, rasa_port, API_TOKEN, *flags
                ),
                rasa_server_env(env, API_TOKEN),
                logs["rasa"],
            )
        )
        wait_until_up(f"http://127.0.0.1:{action_port}/health", procs[0], logs["actions"])
        wait_until_up(
            f"http://127.0.0.1:{rasa_port}/status?token={API_TOKEN}", procs[1], logs["rasa"]
        )
        servers = Servers(
            f"http://127.0.0.1:{rasa_port}",
            home,
            logs,
            action_url=f"http://127.0.0.1:{action_port}",
            procs={"actions": procs[0], "rasa": procs[1]},
            action_cmd=action_cmd,
            env=action_env,
        )
        yield servers
    finally:
        for proc in [*procs, *(servers.procs.values() if servers else [])]:
            stop(proc)
