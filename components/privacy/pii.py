"""Masking of personal data with stable keyed tokens, reversible with a :class:`Vault`.

Masking replaces each span found by :func:`components.privacy.recognisers.find_pii` by
``[TYPE_xxxxxxxx]`` where the suffix is a keyed hash of the value: the same value always gets the
same token, tokens never match a recogniser (masking is idempotent), and with a
:class:`components.privacy.vault.Vault` the original can be recovered by whoever holds the key.
A value typed in full-width digits gets the same token as in ASCII digits.

Sender ids (conversation ids) are personal data too — Telegram- or WhatsApp-style channels use
the customer's phone number or e-mail address — so everything that stores one stores
:meth:`PIIMasker.sender_token` instead: ``sender_`` and 16 hex digits of a keyed hash (64 bits:
no two conversations of a deployment share one). It must be the same in every process and after
every restart, since the tracker store looks conversations up by it, so its key is
``KEFU_VAULT_KEY`` (or the key given) and, without one, a random key kept in
``KEFU_HOME/sender.key`` (mode 0600). With that file, whoever can read ``KEFU_HOME`` can test a
guessed sender id against the stored tokens; a deployment that stores real customers' ids sets
``KEFU_VAULT_KEY`` and keeps it elsewhere. With a vault the original sender id is kept in it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

from components.errors import ConfigError
from components.paths import kefu_home
from components.privacy.recognisers import SENDER_TOKEN, PIISpan, SpanTagger, find_pii
from components.privacy.vault import Vault

SENDER_KEY_FILE = "sender.key"
_SENDER_CACHE_SIZE = 4096
_FOUND_CACHE_SIZE = 4096
# a quoted part of a log line: from a quote to the same quote before a non-word character
# (so "'I'm Sara'" is one part)
_QUOTED = re.compile(r"""(['"])(.+?)\1(?=\W|$)""")


def _add_uncovered(spans: list[PIISpan], candidates: Iterable[PIISpan]) -> list[PIISpan]:
    """``spans`` plus each candidate that overlaps none of them nor a candidate kept before it.

    In text order; ``spans`` itself when no candidate is kept.
    """
    extra: list[PIISpan] = []
    for candidate in candidates:
        if not any(candidate.start < s.end and s.start < candidate.end for s in spans + extra):
            extra.append(candidate)
    return sorted(spans + extra, key=lambda s: s.start) if extra else spans


def _installation_key() -> bytes:
    """The random sender-token key of this ``KEFU_HOME``, created on first use (mode 0600).

    Raises:
        ConfigError: when the key file is empty or too short.
    """
    path = kefu_home() / SENDER_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:  # first process: write it; the others wait below until it is complete
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
    for _ in range(200):
        key = path.read_text(encoding="ascii").strip()
        if len(key) >= 64:
            return key.encode()
        time.sleep(0.01)
    raise ConfigError(str(path), "<hidden>", "64 hex digits written by Kefu (delete the file)")


class PIIMasker:
    """Masks personal data with stable keyed tokens.

    Args:
        key: Token key; default ``KEFU_VAULT_KEY`` or a random per-process key (sender tokens
            then use the installation key in ``KEFU_HOME/sender.key``).
        vault: Where originals are kept when masking must be reversible.
        tagger: The learned name/address recogniser run after the rules
            (:class:`components.privacy.tagger.PIITagger`); None: rules only.
    """

    def __init__(
        self, key: str | None = None, vault: Vault | None = None, tagger: SpanTagger | None = None
    ) -> None:
        self.vault = vault
        self.tagger = tagger
        # the same texts are masked again and again (each tracker save, the broker, the logs):
        # the learned recogniser's answers are kept for the most recent ones
        self._found: dict[str, list[PIISpan]] = {}
        # names and addresses found in what people wrote, found again wherever they reappear
        # (a reply that repeats the customer's name, a log line)
        self._known: dict[str, str] = {}
        given = key or os.environ.get("KEFU_VAULT_KEY")
        secret = given or secrets.token_hex(16)
        self._key = vault.key if vault else secret.encode()
        self._sender_key: bytes | None = self._key if (vault or given) else None
        self._senders: dict[str, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(
        cls, vault_path: str | Path | None = None, tagger: SpanTagger | None = None
    ) -> PIIMasker:
        """Reversible (with a vault) when ``KEFU_VAULT_KEY`` is set, one-way otherwise."""
        key = os.environ.get("KEFU_VAULT_KEY")
        if key and vault_path:
            return cls(vault=Vault(key, vault_path), tagger=tagger)
        return cls(key, tagger=tagger)

    def find(self, text: str, learned: bool = True, remember: bool = True) -> list[PIISpan]:
        """The personal-data spans :meth:`mask` replaces.

        Args:
            text: The text.
            learned: Whether a person wrote it (a customer's message): the learned recogniser
                reads it too. For text the assistant or a program wrote (replies, knowledge
                passages, slot values set by actions, metadata) the learned recogniser is too
                eager (headings, sentence-initial words, ticket ids); there the rules run. Either
                way, the names and addresses it found in what people wrote are found again
                wherever they reappear (a reply that repeats the customer's name, a log line).
            remember: Whether names and addresses the learned recogniser finds here are to be
                found again elsewhere (not for log lines, which also quote the assistant).
        """
        if self.tagger is None or not text:
            return find_pii(text)
        if not learned:
            return self._with_known(text, find_pii(text))
        found = self._found.get(text)
        if found is None:
            found = find_pii(text, self.tagger)
            with self._lock:
                if len(self._found) >= _FOUND_CACHE_SIZE:
                    self._found.clear()
                self._found[text] = found
        if remember:
            with self._lock:
                for span in found:
                    if span.type in ("NAME", "ADDRESS") and span.value not in self._known:
                        if len(self._known) >= _FOUND_CACHE_SIZE:
                            self._known.clear()
                        self._known[span.value] = span.type
        return self._with_known(text, found)

    def _with_known(self, text: str, spans: list[PIISpan]) -> list[PIISpan]:
        """``spans`` plus every occurrence of a known name or address that none of them covers."""

        def occurrences() -> Iterator[PIISpan]:
            for value, kind in list(self._known.items()):
                if len(value) < 2:
                    continue
                at = text.find(value)
                while at >= 0:
                    yield PIISpan(kind, at, at + len(value), value)
                    at = text.find(value, at + len(value))

        return _add_uncovered(spans, occurrences())

    def token(self, kind: str, value: str) -> str:
        """The stable token for one value."""
        digest = hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"[{kind}_{digest[:8]}]"

    def sender_token(self, sender_id: str) -> str:
        """The stable token stored in place of a sender id: ``sender_`` and 16 hex digits.

        A sender token is returned as it is (saving a conversation looked up by its token does
        not mask it twice). With a vault, the original is kept there (``Vault.reveal``).
        """
        found = self._senders.get(sender_id)
        if found is not None:
            return found
        if SENDER_TOKEN.fullmatch(sender_id):
            return sender_id
        if self._sender_key is None:
            with self._lock:
                if self._sender_key is None:
                    self._sender_key = _installation_key()
        digest = hmac.new(self._sender_key, f"SENDER:{sender_id}".encode(), hashlib.sha256)
        token = f"sender_{digest.hexdigest()[:16]}"
        if self.vault:
            self.vault.put(token, sender_id)
        with self._lock:
            if len(self._senders) >= _SENDER_CACHE_SIZE:
                self._senders.clear()
            self._senders[sender_id] = token
        return token

    def find_in_log(self, line: str) -> list[PIISpan]:
        """Personal data in a log line: :meth:`find` on the quoted parts, the rules elsewhere.

        A log line is a program's sentence around what people wrote ("Received user message
        '...'", ``"text": "..."``): the learned recogniser reads only the quoted parts, where a
        customer's words are; the rules and the names and addresses already found in user text
        cover the whole line (a state dump that repeats a message unquoted).
        """
        spans = self.find(line, learned=False)
        if self.tagger is None or not line:
            return spans
        quoted = (
            PIISpan(span.type, span.start + match.start(2), span.end + match.start(2), span.value)
            for match in _QUOTED.finditer(line)
            for span in self.find(match.group(2), remember=False)
        )
        return _add_uncovered(spans, quoted)

    def mask(self, text: str, learned: bool = True, remember: bool = True) -> str:
        """``text`` with every personal-data span replaced by its token (see :meth:`find`)."""
        if not text:
            return text
        return self.replace(text, self.find(text, learned, remember))

    def replace(self, text: str, spans: list[PIISpan]) -> str:
        """``text`` with the given spans (in order, not overlapping) replaced by their tokens."""
        if not spans:
            return text
        out, last = [], 0
        for span in spans:
            value = (
                span.value if span.value.isascii() else unicodedata.normalize("NFKC", span.value)
            )
            token = self.token(span.type, value)
            if self.vault:
                self.vault.put(token, span.value)
            out += [text[last : span.start], token]
            last = span.end
        out.append(text[last:])
        return "".join(out)
