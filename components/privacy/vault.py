"""An encrypted, keyed token -> original value store, so storage only ever holds tokens."""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
import threading
from pathlib import Path

from components.errors import ConfigError
from components.privacy.recognisers import SENDER_TOKEN, TOKEN

_ANY_TOKEN = re.compile(f"{TOKEN.pattern}|{SENDER_TOKEN.pattern}")


class Vault:
    """Keyed, encrypted token -> value store (SQLite), so storage only ever holds tokens.

    Args:
        key: Secret (from ``KEFU_VAULT_KEY``); it keys the token hash and encrypts the values.
        path: SQLite file of the vault.
    """

    def __init__(self, key: str, path: str | Path) -> None:
        if not key or len(key) < 16:
            raise ConfigError("KEFU_VAULT_KEY", "<hidden>", "a secret of at least 16 characters")
        from cryptography.fernet import Fernet

        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))
        self.key = key.encode()
        self.path = Path(path)
        self._lock = threading.Lock()
        with self._connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS vault (token TEXT PRIMARY KEY, value BLOB)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def put(self, token: str, value: str) -> None:
        """Store the encrypted value for ``token`` (idempotent)."""
        with self._lock, self._connect() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO vault VALUES (?, ?)",
                (token, self._fernet.encrypt(value.encode())),
            )

    def reveal(self, token: str) -> str | None:
        """The original value of ``token``, or None when unknown."""
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM vault WHERE token = ?", (token,)).fetchone()
        return self._fernet.decrypt(row[0]).decode() if row else None

    def reveal_many(self, tokens: list[str]) -> dict[str, str]:
        """The original values of those ``tokens`` the vault knows (one query per 500)."""
        found: dict[str, str] = {}
        with self._connect() as conn:
            for i in range(0, len(tokens), 500):
                chunk = tokens[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT token, value FROM vault WHERE token IN ({marks})", chunk
                )
                found.update((token, self._fernet.decrypt(value).decode()) for token, value in rows)
        return found

    def reveal_all(self, text: str) -> str:
        """Replace every known token (values and sender ids) in ``text`` by its original."""
        return _ANY_TOKEN.sub(lambda m: self.reveal(m.group(0)) or m.group(0), text)
