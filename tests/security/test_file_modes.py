"""Everything under KEFU_HOME is readable by its owner only: folders 700, files 600.

Conversations, tickets, the handoff queue and the logs hold customer data; another local user
must not read them. The action server's start-up (:func:`actions.server_extensions.attach`) and
the Rasa server's (:func:`components.paths.lock_down`) set umask 077 and tighten what an older
version left at 644/755.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.paths import kefu_home


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    """Start from the usual umask 022 (files 644), and restore the caller's afterwards."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def loose_modes(home: Path) -> dict[str, int]:
    """Every path under ``home`` whose mode is not owner-only, with its mode."""
    wrong = {}
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode != (0o700 if path.is_dir() else 0o600):
            wrong[str(path.relative_to(home))] = oct(mode)
    return wrong


def upgraded_home(home: Path) -> None:
    """What an older version left: databases, logs and a folder world-readable."""
    home.chmod(0o755)
    for name in ("tracker.db", "tickets.db"):
        sqlite3.connect(home / name).execute("CREATE TABLE old (x)").connection.close()
    for name in ("actions.log", "rasa.log"):
        (home / name).write_text("old\n")
    for name in ("tracker.db", "tickets.db", "actions.log", "rasa.log"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o644
    (home / "finetune").mkdir(mode=0o755)
    (home / "finetune" / "evaluation.json").write_text("{}")


def test_a_new_kefu_home_is_created_owner_only(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_HOME", str(tmp_path / "fresh" / "home"))
    assert stat.S_IMODE(kefu_home().stat().st_mode) == 0o700


def test_the_action_server_start_up_and_first_writes_leave_only_owner_only_files(kefu_home):
    from rasa_sdk.endpoint import create_app
    from sanic import Sanic

    from actions.tickets import TicketStore
    from components.stores import handoff_queue

    upgraded_home(kefu_home)
    from actions.server_extensions import attach

    Sanic.test_mode = True
    attach(create_app("actions"))
    # the first writes of the stores this process owns
    TicketStore()._open().close()
    record = handoff_queue.HandoffRecord("sender_0123456789abcdef", "action_failed", "action_x")
    handoff_queue.enqueue(record)
    (kefu_home / "state").mkdir()
    sqlite3.connect(kefu_home / "state" / "x.db").execute("CREATE TABLE t (x)").connection.close()
    with (kefu_home / "actions.log").open("a") as log:
        log.write("appended\n")
    (kefu_home / "new.log").write_text("created after start-up\n")
    assert (kefu_home / "tickets.db").is_file() and (kefu_home / "handoff_queue.db").is_file()
    assert loose_modes(kefu_home) == {}


def test_the_rasa_process_hook_tightens_and_restricts(kefu_home):
    from components.paths import lock_down

    upgraded_home(kefu_home)
    assert lock_down() == kefu_home
    conn = sqlite3.connect(kefu_home / "tracker.db")  # what Rasa's SQL tracker store does
    conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
    conn.commit()
    conn.close()
    (kefu_home / "tracker.db-journal").write_text("")
    assert loose_modes(kefu_home) == {}


def test_symlinks_are_not_followed(kefu_home, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not Kefu's")
    outside.chmod(0o644)
    (kefu_home / "link").symlink_to(outside)
    from components.paths import lock_down

    lock_down()
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644


def test_databases_and_secrets_are_owner_only_whatever_the_umask(kefu_home):
    from actions.sqlite import open_db
    from components.errors import TicketStoreError
    from components.tools.secrets import ensure

    open_db(kefu_home / "orders.db", "CREATE TABLE t (x)", TicketStoreError).close()
    secrets = kefu_home / "secrets.env"
    secrets.write_text("KEFU_ACTION_SECRET=kefu-old-secret-0123456789\n")
    secrets.chmod(0o644)
    ensure(secrets)
    ensure(kefu_home / "sub" / "secrets.env")
    kefu_home.chmod(0o700)
    assert loose_modes(kefu_home) == {}


@pytest.mark.e2e
@pytest.mark.slow
def test_a_real_deployment_leaves_only_owner_only_files(trained_model, tmp_path_factory):
    from deployment.servers import running_servers

    home = tmp_path_factory.mktemp("modes_home")
    with running_servers(trained_model, home) as servers:
        servers.say("modes-check", "where is my order?")
        servers.say("modes-check", "I want to talk to a human")
        assert (home / "tracker.db").is_file() and (home / "rasa.log").is_file()
        assert loose_modes(home) == {}
