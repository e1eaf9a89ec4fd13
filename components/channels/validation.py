"""Validation of a REST channel request body: its size, its JSON shape, its limits.

A request is accepted only as ``{"sender": str, "message": str}`` with an optional
``metadata`` object (at most :data:`MAX_METADATA_DEPTH` levels deep and
:data:`MAX_METADATA_BYTES` as JSON) and ``input_channel`` string. Everything else is a
:class:`Rejected` with an HTTP status, a stable code and a message that says what to do, so a
client gets a 4xx it can act on and nothing of the request reaches Rasa. The empty message
``""`` is accepted: Rasa answers it like any other message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components.channels.options import RestOptions
from components.privacy.recognisers import SENDER_TOKEN

#: Conversation ids of Slack and Telegram customers start with these; REST and socket.io refuse
#: them as sender ids, so nobody can open a platform customer's conversation by naming their
#: (easily found) user or chat id.
PLATFORM_PREFIXES = ("slack:", "telegram:")

EXAMPLE = '{"sender": "customer-42", "message": "where is my order?"}'
MAX_INPUT_CHANNEL_CHARS = 64
#: Deepest accepted ``metadata`` (the object itself is level 1; lists count as levels). Rasa
#: deep-copies and serialises metadata recursively on every turn (``UserUttered``, tracker
#: store, NLG, action server), using a few stack frames per level from a stack already ~200
#: frames deep: about 480 levels exhaust Python's recursion limit of 1000 and lose the turn.
#: Real metadata is shallow (widgets and platforms send 2-4 levels); 32 is eight times that and
#: a tenth of the depth that fails.
MAX_METADATA_DEPTH = 32
#: Largest accepted ``metadata``, as compact UTF-8 JSON: it is stored with every user event.
#: The 16 KiB the default body limit keeps free beside a message (:attr:`RestOptions.body_limit`).
MAX_METADATA_BYTES = 16 * 1024


class Rejected(Exception):
    """A request the channel refuses, with what to tell the client.

    Args:
        status: HTTP status (400, 413, 429, ...).
        code: Stable machine-readable code, e.g. ``message_too_long``.
        message: What went wrong and what to do, safe to show (never echoes the request).
        headers: Extra response headers (``Retry-After``).
    """

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        return {"error": {"code": self.code, "message": self.message}}


@dataclass(frozen=True)
class ChatRequest:
    """A validated request.

    Attributes:
        sender: The conversation id (never empty; never Rasa's shared ``default``).
        message: The user's text (may be empty).
        metadata: The ``metadata`` object, or None when absent.
        input_channel: The ``input_channel`` the client named, or None.
    """

    sender: str
    message: str
    metadata: dict[str, Any] | None = None
    input_channel: str | None = None


def check_declared_size(
    content_length: str | None, options: RestOptions, limit: int | None = None
) -> None:
    """Reject a body whose ``Content-Length`` is over the limit before reading it.

    Args:
        content_length: The header's value, or None when there is none (chunked body).
        options: The channel's limits.
        limit: The body limit in bytes, when lower than ``options.body_limit`` (the server's).

    Raises:
        Rejected: 413 ``body_too_large``.
    """
    if content_length is None:
        return
    try:
        declared = int(content_length)
    except ValueError:
        raise Rejected(400, "invalid_body", "The Content-Length header is not a number.") from None
    check_size(declared, options, limit)


def check_size(size: int, options: RestOptions, limit: int | None = None) -> None:
    """Reject a body of ``size`` bytes when it is over the limit.

    Args:
        size: The body's size (so far), in bytes.
        options: The channel's limits.
        limit: The body limit in bytes (default ``options.body_limit``).

    Raises:
        Rejected: 413 ``body_too_large``.
    """
    limit = options.body_limit if limit is None else limit
    if size > limit:
        raise body_too_large(options, limit)


def body_too_large(options: RestOptions, limit: int) -> Rejected:
    """The 413 for a body over ``limit`` bytes."""
    return Rejected(
        413,
        "body_too_large",
        f"The request body is larger than {limit} bytes. Send one message of "
        f"at most {options.max_message_chars} characters per request.",
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_request(body: bytes | str, options: RestOptions) -> ChatRequest:
    """Validate a request body and return what it asks for.

    Args:
        body: The raw request body (any Content-Type: clients such as ``curl -d`` send JSON as
            form data).
        options: The channel's limits.

    Raises:
        Rejected: 400 for a malformed body or field, 413 for a body or message over the limits.
    """
    check_size(len(body), options)
    if not body or not body.strip():
        raise Rejected(400, "invalid_json", f"The request body is empty. Send {EXAMPLE}.")
    try:
        data = json.loads(body, parse_constant=_no_constant)
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # lone surrogates ("\ud800")
    except (ValueError, RecursionError, UnicodeError):
        raise Rejected(
            400, "invalid_json", f"The request body is not valid UTF-8 JSON. Send {EXAMPLE}."
        ) from None
    if not isinstance(data, dict):
        raise Rejected(400, "invalid_json", f"The request body must be a JSON object: {EXAMPLE}.")
    sender = _sender(data, options)
    message = _message(data.get("message"), options, EXAMPLE)
    metadata = data.get("metadata")
    if metadata is not None:
        check_metadata(metadata)
    channel = data.get("input_channel")
    if channel is not None and (
        not isinstance(channel, str) or not 0 < len(channel) <= MAX_INPUT_CHANNEL_CHARS
    ):
        raise Rejected(
            400,
            "invalid_input_channel",
            f'"input_channel" must be a string of 1 to {MAX_INPUT_CHANNEL_CHARS} characters '
            "when present.",
        )
    return ChatRequest(sender, message, metadata, channel)


def check_metadata(metadata: Any) -> None:
    """Reject ``metadata`` that is not a JSON object of bounded depth and size.

    The depth is measured without recursion, before anything serialises the value.

    Args:
        metadata: The parsed ``metadata`` value of a request or event (not None).

    Raises:
        Rejected: 400 ``invalid_metadata`` (not an object, not JSON, deeper than
            :data:`MAX_METADATA_DEPTH`), 413 ``metadata_too_large`` (over
            :data:`MAX_METADATA_BYTES`).
    """
    if not isinstance(metadata, dict):
        raise Rejected(
            400,
            "invalid_metadata",
            f'"metadata" must be a JSON object when present (it is {_kind(metadata)}).',
        )
    if _depth_over(metadata, MAX_METADATA_DEPTH):
        raise Rejected(
            400,
            "invalid_metadata",
            f'"metadata" is nested more than {MAX_METADATA_DEPTH} levels deep: send a flatter '
            "object.",
        )
    try:
        size = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode())
    except (ValueError, TypeError, RecursionError, UnicodeError):
        raise Rejected(400, "invalid_metadata", '"metadata" is not valid JSON.') from None
    if size > MAX_METADATA_BYTES:
        raise Rejected(
            413,
            "metadata_too_large",
            f'"metadata" has {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}. Send less '
            "metadata with each message.",
        )


def _depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects and arrays more than ``limit`` levels (iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _message(message: Any, options: RestOptions, example: str) -> str:
    """The message text, or a 400 (not a string) or 413 (over ``max_message_chars``)."""
    if not isinstance(message, str):
        raise Rejected(
            400,
            "invalid_message",
            f'"message" must be a string (it is {_kind(message)}). Send {example}.',
        )
    if len(message) > options.max_message_chars:
        raise Rejected(
            413,
            "message_too_long",
            f"The message has {len(message)} characters; the limit is "
            f"{options.max_message_chars}. Send a shorter message or split it.",
        )
    return message


def _sender(data: dict[str, Any], options: RestOptions) -> str:
    sender = data.get("sender")
    limit = options.max_sender_chars
    what = f'"sender" must be a non-empty string of at most {limit} characters'
    if not isinstance(sender, str):
        raise Rejected(
            400,
            "invalid_sender",
            f"{what} (it is {_kind(sender)}): one id per conversation, e.g. {EXAMPLE}.",
        )
    if not sender.strip():
        raise Rejected(400, "invalid_sender", f"{what} (it is empty).")
    if len(sender) > limit:
        raise Rejected(400, "invalid_sender", f"{what} (it has {len(sender)}).")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in sender):
        raise Rejected(400, "invalid_sender", f"{what}, without control characters.")
    if sender.startswith(PLATFORM_PREFIXES):
        raise Rejected(
            400,
            "invalid_sender",
            f"{what}, not starting with a platform's prefix (slack:, telegram:).",
        )
    if SENDER_TOKEN.search(sender):
        # stored conversations are keyed by these tokens, and tokens appear in logs and tickets:
        # a client must not open another customer's conversation by naming its token
        raise Rejected(
            400, "invalid_sender", f"{what}, not shaped like a stored sender token (sender_<hex>)."
        )
    return sender


def _kind(value: Any) -> str:
    """The JSON type of ``value`` in words (the value itself is never echoed)."""
    if value is None:
        return "missing or null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


@dataclass(frozen=True)
class SocketMessage:
    """A validated socket.io ``user_uttered`` event.

    Attributes:
        message: The user's text (may be empty).
        session_id: The ``session_id`` the client sent, or None.
        metadata: The ``metadata`` object, or None when absent.
    """

    message: str
    session_id: str | None = None
    metadata: dict[str, Any] | None = None


SOCKET_EXAMPLE = '{"message": "where is my order?", "session_id": "<from session_confirm>"}'


def parse_socket_message(
    data: Any, options: RestOptions, metadata_key: str = "metadata"
) -> SocketMessage:
    """Validate the data of a socket.io ``user_uttered`` event.

    Args:
        data: What the client emitted (any JSON value, or bytes).
        options: The channel's limits (``max_message_chars``, ``max_sender_chars``,
            ``body_limit``); the metadata is bounded by :func:`check_metadata`.
        metadata_key: The field holding the metadata (Rasa's ``metadata_key`` option).

    Raises:
        Rejected: With the status a REST client would get (400, 413) and a stable code.
    """
    if not isinstance(data, dict):
        raise Rejected(
            400, "invalid_event", f"The event data must be a JSON object: {SOCKET_EXAMPLE}."
        )
    message = _message(data.get("message"), options, SOCKET_EXAMPLE)
    try:
        message.encode("utf-8")
    except UnicodeError:
        raise Rejected(400, "invalid_message", '"message" is not valid UTF-8 text.') from None
    session = data.get("session_id")
    if session is not None:
        try:
            session = _sender({"sender": session}, options)
        except Rejected:
            raise Rejected(
                400, "invalid_session", '"session_id" must be the string of session_confirm.'
            ) from None
    metadata = data.get(metadata_key)
    if isinstance(metadata, str):  # Rasa's widget may send it JSON-encoded
        try:
            metadata = json.loads(metadata, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            raise Rejected(400, "invalid_metadata", '"metadata" is not valid JSON.') from None
    if metadata is not None:
        check_metadata(metadata)
    return SocketMessage(message, session, metadata)
