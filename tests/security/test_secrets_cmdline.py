"""No secret of a real deployment may appear on any process's command line.

``/proc/<pid>/cmdline`` (and so ``ps``) is readable by every local user; the environment of a
process (``/proc/<pid>/environ``) only by its owner. The deployment passes the HTTP API token,
the action server's secret, the session secret and the vault key through the environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from components.serve_rasa import TOKEN_ENV, UsageError, main, rasa_arguments
from deployment.servers import (
    ACTION_SECRET,
    API_TOKEN,
    SESSION_SECRET,
    VAULT_KEY,
    Servers,
    rasa_server_command,
    rasa_server_env,
    running_servers,
)

SECRETS = {
    "api token": API_TOKEN,
    "action secret": ACTION_SECRET,
    "session secret": SESSION_SECRET,
    "vault key": VAULT_KEY,
}


@pytest.fixture(scope="module")
def servers(trained_model, tmp_path_factory) -> Iterator[Servers]:
    with running_servers(trained_model, tmp_path_factory.mktemp("cmdline_home")) as running:
        yield running


def command_lines() -> dict[int, str]:
    """Every process's command line (arguments joined by spaces), by pid."""
    lines = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # the process ended meanwhile, or is not ours to read
            continue
        lines[int(entry.name)] = raw.replace(b"\0", b" ").decode("utf-8", "replace")
    return lines


@pytest.mark.e2e
@pytest.mark.slow
def test_no_secret_is_on_any_command_line(servers):
    rasa, actions = servers.procs["rasa"], servers.procs["actions"]
    lines = command_lines()
    assert rasa.pid in lines and actions.pid in lines  # the servers are among those scanned
    assert "rasa" in lines[rasa.pid] and "--enable-api" in lines[rasa.pid]
    leaks = [
        (pid, what)
        for pid, line in lines.items()
        for what, secret in SECRETS.items()
        if secret in line
    ]
    assert leaks == [], leaks


@pytest.mark.e2e
@pytest.mark.slow
def test_the_api_still_needs_and_accepts_the_token(servers):
    url = f"{servers.rasa_url}/status"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, params={"token": "guess"}, timeout=10).status_code == 401
    assert requests.get(url, params={"token": API_TOKEN}, timeout=10).status_code == 200


def test_the_launcher_takes_the_token_from_the_environment():
    argv = ["--enable-api", "-m", "models", "--port", "5005"]
    assert rasa_arguments(argv, {TOKEN_ENV: "t0k"}) == ["run", "--auth-token", "t0k", *argv]
    assert rasa_arguments(["-m", "models"], {}) == ["run", "-m", "models"]


@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        (["--enable-api", "--auth-token", "t0k"], {}),
        (["--enable-api", "-t", "t0k"], {TOKEN_ENV: "t0k"}),
        (["--auth-token=t0k"], {}),
        (["--enable-api"], {}),  # an open HTTP API
        (["--enable-api"], {TOKEN_ENV: ""}),
    ],
)
def test_the_launcher_refuses_a_token_on_the_command_line_or_an_open_api(argv, environ):
    with pytest.raises(UsageError):
        rasa_arguments(argv, environ)


def test_the_launcher_exits_with_a_usage_error(monkeypatch, capsys):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert main(["--enable-api"]) == 2
    assert TOKEN_ENV in capsys.readouterr().err


def test_the_server_command_has_no_token_but_its_environment_does(tmp_path):
    command = rasa_server_command(tmp_path / "m.tar.gz", tmp_path, tmp_path, 5005, API_TOKEN)
    assert API_TOKEN not in " ".join(command) and "components.serve_rasa" in command
    assert rasa_server_env({"A": "1"}, API_TOKEN) == {"A": "1", TOKEN_ENV: API_TOKEN}
    with pytest.raises(ValueError):
        rasa_server_command(tmp_path / "m.tar.gz", tmp_path, tmp_path, 5005, "")
