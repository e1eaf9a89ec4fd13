"""One way to open the action server's SQLite databases, with catalogued errors.

A database file is created mode 600 whatever the process umask (its journals take the same mode).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from components.errors import KefuError


def open_db(path: Path, init_sql: str, error: type[KefuError]) -> sqlite3.Connection:
    """Connect to ``path`` (a new file: mode 600) and run ``init_sql`` (idempotent DDL / seed).

    Raises:
        error: the given ``KefuError`` subclass when the file cannot be opened or initialised.
    """
    try:
        if str(path) != ":memory:":
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # owner-only before SQLite
        conn = sqlite3.connect(path, timeout=10)
        conn.executescript(init_sql)
        return conn
    except (sqlite3.Error, OSError) as exc:
        raise error(
            f"database unavailable: {type(exc).__name__}",
            hint="check that KEFU_HOME is writable",
            path=str(path),
        ) from exc
