"""Personal-data detection and masking (zh + en), with an optional keyed vault.

Recognisers are patterns plus validators, so a random 18-digit number is not a Chinese resident
ID unless its ISO 7064 MOD 11-2 check digit and birth date are valid, and a digit run is not a
bank card unless it passes Luhn. Types: ``EMAIL``, ``CN_ID``, ``BANK_CARD``, ``IBAN``, ``PHONE``
(Chinese mobiles with or without +86, international ``+`` numbers), ``IP`` (v4), ``URL_SECRET``
(URLs carrying tokens, keys, passwords or signatures).

Masking replaces each span by ``[TYPE_xxxxxxxx]`` where the suffix is a keyed hash of the value:
the same value always gets the same token, tokens never match a recogniser (masking is
idempotent), and with a :class:`Vault` the original can be recovered by whoever holds the key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from components.errors import ConfigError

TOKEN = re.compile(r"\[(?:EMAIL|CN_ID|BANK_CARD|IBAN|PHONE|IP|URL_SECRET)_[0-9a-f]{8}\]")


@dataclass(frozen=True)
class PIISpan:
    """A detected value; offsets into the original text (``end`` exclusive)."""

    type: str
    start: int
    end: int
    value: str


def _cn_id_valid(value: str) -> bool:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(value[:17], weights, strict=True))
    if "10X98765432"[total % 11] != value[17].upper():
        return False
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return dt.date(1900, 1, 1) <= born <= dt.date.today()


def _luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _iban_valid(value: str) -> bool:
    compact = value.replace(" ", "").upper()
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _ipv4_valid(value: str) -> bool:
    return all(
        0 <= int(part) <= 255 and (part == "0" or not part.startswith("0"))
        for part in value.split(".")
    )


# (type, pattern, validator); earlier entries win overlaps of equal length
_RECOGNISERS = [
    (
        "URL_SECRET",
        re.compile(
            r"https?://[^\s]+?[?&]"
            r"(?:token|access_token|key|api_key|apikey|password|pwd|secret|sig|signature|auth)"
            r"=[^\s&]+[^\s]*",
            re.IGNORECASE,
        ),
        None,
    ),
    (
        "EMAIL",
        re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
        None,
    ),
    ("CN_ID", re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"), _cn_id_valid),
    (
        "IBAN",
        re.compile(
            r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?"
            r"(?![A-Za-z0-9])"
        ),
        _iban_valid,
    ),
    (
        "BANK_CARD",
        re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"),
        lambda v: _luhn_valid(re.sub(r"\D", "", v)),
    ),
    ("PHONE", re.compile(r"(?<![\d+])(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)"), None),
    (
        "PHONE",
        re.compile(r"(?<![\w+])\+\d{1,3}(?:[ -]?\(?\d{1,4}\)?){2,5}(?!\d)"),
        lambda v: 8 <= len(re.sub(r"\D", "", v)) <= 15,
    ),
    ("IP", re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"), _ipv4_valid),
]


def find_pii(text: str) -> list[PIISpan]:
    """Every personal-data span in ``text``, non-overlapping, in order."""
    if not text:
        return []
    found: list[PIISpan] = []
    for kind, pattern, valid in _RECOGNISERS:
        for match in pattern.finditer(text):
            value = match.group(0)
            if TOKEN.fullmatch(value) or (valid and not valid(value)):
                continue
            found.append(PIISpan(kind, match.start(), match.end(), value))
    found.sort(key=lambda s: (s.start, -(s.end - s.start)))
    kept: list[PIISpan] = []
    for span in found:
        if not kept or span.start >= kept[-1].end:
            kept.append(span)
    return kept


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

    def reveal_all(self, text: str) -> str:
        """Replace every known token in ``text`` by its original value."""
        return TOKEN.sub(lambda m: self.reveal(m.group(0)) or m.group(0), text)


class PIIMasker:
    """Masks personal data with stable keyed tokens.

    Args:
        key: Token key; default ``KEFU_VAULT_KEY`` or a random per-process key.
        vault: Where originals are kept when masking must be reversible.
    """

    def __init__(self, key: str | None = None, vault: Vault | None = None) -> None:
        self.vault = vault
        secret = key or os.environ.get("KEFU_VAULT_KEY") or secrets.token_hex(16)
        self._key = vault.key if vault else secret.encode()

    @classmethod
    def from_env(cls, vault_path: str | Path | None = None) -> PIIMasker:
        """Reversible (with a vault) when ``KEFU_VAULT_KEY`` is set, one-way otherwise."""
        key = os.environ.get("KEFU_VAULT_KEY")
        if key and vault_path:
            return cls(vault=Vault(key, vault_path))
        return cls(key)

    def token(self, kind: str, value: str) -> str:
        """The stable token for one value."""
        digest = hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"[{kind}_{digest[:8]}]"

    def mask(self, text: str) -> str:
        """``text`` with every personal-data span replaced by its token."""
        if not text:
            return text
        spans = find_pii(text)
        if not spans:
            return text
        out, last = [], 0
        for span in spans:
            token = self.token(span.type, span.value)
            if self.vault:
                self.vault.put(token, span.value)
            out += [text[last : span.start], token]
            last = span.end
        out.append(text[last:])
        return "".join(out)
