"""The socket.io channel's sessions and origins (an engine: no Rasa, no Sanic imports).

* :class:`SessionSigner` — session ids a page can resume but not forge (HMAC with
  ``KEFU_SESSION_SECRET``, shared by replicas);
* the origin allow-list (``allowed_origins``, else ``KEFU_CORS_ORIGINS``, else the Makefile's
  default ``CORS_ORIGINS``) and :func:`client_address`, the key of the session-minting limit.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from typing import Any

from components.channels.validation import Rejected
from components.errors import ConfigError

#: The allow-list of origins when the block has no ``allowed_origins`` (space-separated).
ORIGINS_ENV = "KEFU_CORS_ORIGINS"
#: The last resort: the Makefile's default ``CORS_ORIGINS`` (``RASA_PORT`` 5005).
DEFAULT_ORIGINS = ("http://localhost:5005", "http://127.0.0.1:5005")
_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?"
)


class SessionSigner:
    """Issues session ids and recognises the ones it issued (HMAC-SHA256, shared secret).

    Args:
        secret: The signing key; replicas behind one proxy must share it.
    """

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the session secret is empty")
        self._key = secret.encode("utf-8")

    def _tag(self, core: str) -> str:
        return hmac.new(self._key, core.encode("ascii"), hashlib.sha256).hexdigest()[:24]

    def issue(self) -> str:
        """A new session id: 32 random hex digits, a dot, a 24-digit tag."""
        core = uuid.uuid4().hex
        return f"{core}.{self._tag(core)}"

    def valid(self, session_id: Any) -> bool:
        """Whether ``session_id`` is one this secret issued."""
        if not isinstance(session_id, str) or len(session_id) != 57:
            return False
        core, _, tag = session_id.partition(".")
        if len(core) != 32 or any(c not in "0123456789abcdef" for c in core) or not tag.isascii():
            return False
        return hmac.compare_digest(tag, self._tag(core))


ORIGIN_REFUSED = Rejected(
    403,
    "origin_not_allowed",
    "This page's origin may not use the chat: add it to allowed_origins (or CORS_ORIGINS).",
)


def parse_origins(value: Any) -> tuple[str, ...]:
    """The allow-list from a list or a space-separated string of origins.

    Raises:
        ConfigError: On an empty list, ``*``, or an item that is not ``scheme://host[:port]``.
    """
    items = value.split() if isinstance(value, str) else value
    expected = (
        "a list (or space-separated string) of origins like https://shop.example or "
        "http://localhost:5005, without paths and never *"
    )
    if not isinstance(items, (list, tuple)) or not items:
        raise ConfigError("allowed_origins", value, expected, component="channels.socketio")
    for item in items:
        if not isinstance(item, str) or not _ORIGIN.fullmatch(item):
            raise ConfigError("allowed_origins", item, expected, component="channels.socketio")
    return tuple(items)


def client_address(environ: Mapping[str, Any] | None) -> str:
    """The client's address: Sanic's (proxy-aware when configured), else Engine.IO's."""
    environ = environ or {}
    request = environ.get("sanic.request")
    address = ""
    if request is not None:
        try:
            address = request.remote_addr or request.ip or ""
        except Exception:  # a request object without connection info (e.g. a test double)
            address = ""
    return address or str(environ.get("REMOTE_ADDR") or "unknown")


def origin_allowed(environ: Mapping[str, Any], allowed: tuple[str, ...]) -> bool:
    """Whether a socket.io request may proceed, by its ``Origin`` header.

    Args:
        environ: The request's WSGI-style environ (``HTTP_ORIGIN``, ``HTTP_HOST``).
        allowed: The allow-list of origins.

    Returns:
        True without an ``Origin`` (not a browser), for a listed origin, and for a page of this
        server itself (same origin: the Origin's host and port are the ``Host`` it called).
    """
    origin = environ.get("HTTP_ORIGIN")
    if origin is None or origin in allowed:
        return True
    host = environ.get("HTTP_HOST")
    _, _, netloc = str(origin).partition("://")
    return bool(host) and _ORIGIN.fullmatch(str(origin)) is not None and netloc == host
