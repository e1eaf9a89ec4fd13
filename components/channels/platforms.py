"""Slack and Telegram payloads read defensively: what the customer said, or why nothing.

The platforms' webhooks deliver JSON that a forger (or a platform change) can shape at will:
every field is type-checked here and a payload that is not a customer's message becomes an
:class:`Ignored` (answered 200, so the platform does not retry) or a :class:`Rejected` (a 4xx
with a clear message). Nothing here imports Rasa; the adapters (:mod:`.slack`,
:mod:`.telegram`) turn an :class:`Incoming` into a Rasa ``UserMessage``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from components.channels.validation import PLATFORM_PREFIXES, Rejected

__all__ = ["PLATFORM_PREFIXES"]

#: Slack interactive elements whose chosen value becomes the user's message.
SLACK_VALUE_KEYS = {
    "button": ("value",),
    "static_select": ("selected_option", "value"),
    "external_select": ("selected_option", "value"),
    "overflow": ("selected_option", "value"),
    "radio_buttons": ("selected_option", "value"),
    "datepicker": ("selected_date",),
}


@dataclass(frozen=True)
class Incoming:
    """A customer's message from a platform.

    Attributes:
        text: What the customer said (a button's payload for a click).
        user: The platform's user id.
        chat: Where to reply (Slack channel id, Telegram chat id).
        event_id: The platform's id of this delivery (Slack ``event_id`` or the interaction's
            trigger, Telegram ``update_id``): retries carry the same one.
        thread: The Slack thread to reply in, if any.
        kind: ``message``, ``mention``, ``button``, ``edited`` or ``callback``.
        callback_id: Telegram callback query id (to answer the button press).
        mentioned: Slack user ids to strip from the text (the bot's own mentions).
    """

    text: str
    user: str
    chat: str
    event_id: str
    thread: str | None = None
    kind: str = "message"
    callback_id: str | None = None
    mentioned: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Ignored:
    """A valid delivery that is not a customer's message (a bot's own post, a join ...)."""

    reason: str


@dataclass(frozen=True)
class Challenge:
    """Slack's ``url_verification`` handshake: answer with ``value``."""

    value: str


def _str(value: Any, limit: int = 256) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def loads_object(body: bytes | str, what: str) -> dict[str, Any]:
    """Parse a JSON object or raise a 400 that says what was expected."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError, UnicodeError):
        raise Rejected(400, "invalid_json", f"The {what} is not valid JSON.") from None
    if not isinstance(data, dict):
        raise Rejected(400, "invalid_json", f"The {what} must be a JSON object.")
    return data


def slack_event(body: dict[str, Any], max_chars: int) -> Incoming | Ignored | Challenge:
    """Read a Slack Events API envelope.

    Args:
        body: The parsed JSON body.
        max_chars: The longest message accepted.

    Raises:
        Rejected: 400 for a malformed envelope, 413 for a message over ``max_chars``.
    """
    kind = body.get("type")
    if kind == "url_verification":
        challenge = _str(body.get("challenge"), 1024)
        if challenge is None:
            raise Rejected(400, "invalid_event", '"challenge" must be a non-empty string.')
        return Challenge(challenge)
    if kind != "event_callback":
        return Ignored(f"envelope type {kind!r}" if isinstance(kind, str) else "no envelope type")
    event = body.get("event")
    if not isinstance(event, dict):
        raise Rejected(400, "invalid_event", '"event" must be an object in an event_callback.')
    event_type = event.get("type")
    if event_type not in ("message", "app_mention"):
        return Ignored("not a message")
    if event.get("bot_id") or event.get("subtype"):  # our own posts, edits, joins, files
        return Ignored("bot message or subtype")
    text, user, chat = event.get("text"), _str(event.get("user")), _str(event.get("channel"))
    if not isinstance(text, str) or user is None or chat is None:
        raise Rejected(
            400, "invalid_event", 'A message event needs "text", "user" and "channel" strings.'
        )
    _check_length(text, max_chars)
    event_id = _str(body.get("event_id")) or f"{chat}:{_str(event.get('ts')) or ''}"
    authorizations = body.get("authorizations")
    mentioned = tuple(
        a["user_id"]
        for a in (authorizations if isinstance(authorizations, list) else [])
        if isinstance(a, dict) and _str(a.get("user_id"))
    )
    thread = _str(event.get("thread_ts")) or _str(event.get("ts"))
    is_dm = event.get("channel_type") == "im"
    return Incoming(
        text,
        user,
        chat,
        event_id,
        thread=thread,
        kind="mention" if event_type == "app_mention" else ("message" if is_dm else "channel"),
        mentioned=mentioned,
    )


def slack_interaction(form_payload: Any, max_chars: int) -> Incoming | Ignored:
    """Read the ``payload`` field of a Slack interactivity request (a button click).

    Raises:
        Rejected: 400 when the payload is missing or malformed.
    """
    if not isinstance(form_payload, str):
        raise Rejected(400, "invalid_payload", 'The form needs one "payload" field (JSON).')
    payload = loads_object(form_payload, "interaction payload")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return Ignored("no actions")
    action = actions[0]
    path = SLACK_VALUE_KEYS.get(action.get("type"))
    if path is None:
        return Ignored("unsupported interactive element")
    value: Any = action
    for key in path:
        value = _obj(value).get(key)
    user = _str(_obj(payload.get("user")).get("id"))
    chat = _str(_obj(payload.get("channel")).get("id")) or _str(
        _obj(payload.get("container")).get("channel_id")
    )
    if not isinstance(value, str) or user is None or chat is None:
        return Ignored("link button or missing user/channel")
    _check_length(value, max_chars)
    message = _obj(payload.get("message"))
    thread = _str(message.get("thread_ts")) or _str(message.get("ts"))
    trigger = _str(payload.get("trigger_id")) or _str(action.get("action_ts")) or ""
    return Incoming(value, user, chat, f"interaction:{trigger}", thread=thread, kind="button")


def telegram_update(body: dict[str, Any], max_chars: int) -> Incoming | Ignored:
    """Read a Telegram ``Update``: a message, an edited message, or a button's callback query.

    Raises:
        Rejected: 400 for a malformed update, 413 for a message over ``max_chars``.
    """
    update_id = body.get("update_id")
    if isinstance(update_id, bool) or not isinstance(update_id, int):
        raise Rejected(400, "invalid_update", '"update_id" must be an integer.')
    if "callback_query" in body:
        query = body["callback_query"]
        if not isinstance(query, dict):
            raise Rejected(400, "invalid_update", '"callback_query" must be an object.')
        data, chat = query.get("data"), _telegram_chat(_obj(query.get("message")))
        user = _telegram_user(query.get("from"))
        query_id = _str(query.get("id"))
        if not isinstance(data, str) or chat is None or user is None or query_id is None:
            return Ignored("callback query without data, chat, sender or id")
        _check_length(data, max_chars)
        return Incoming(data, user, chat, str(update_id), kind="callback", callback_id=query_id)
    for key, kind in (("message", "message"), ("edited_message", "edited")):
        if key in body:
            message = body[key]
            if not isinstance(message, dict):
                raise Rejected(400, "invalid_update", f'"{key}" must be an object.')
            chat, user = _telegram_chat(message), _telegram_user(message.get("from"))
            if chat is None:
                raise Rejected(400, "invalid_update", f'"{key}.chat.id" must be an integer.')
            text = message.get("text")
            if not isinstance(text, str):
                return Ignored("not a text message")
            if _obj(message.get("from")).get("is_bot") is True:
                return Ignored("bot message")
            _check_length(text, max_chars)
            return Incoming(text, user or chat, chat, str(update_id), kind=kind)
    return Ignored("no message in the update")


def _telegram_chat(message: dict[str, Any]) -> str | None:
    chat_id = _obj(message.get("chat")).get("id")
    if isinstance(chat_id, bool) or not isinstance(chat_id, int):
        return None
    return str(chat_id)


def _telegram_user(sender: Any) -> str | None:
    user_id = _obj(sender).get("id")
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        return None
    return str(user_id)


def _check_length(text: str, max_chars: int) -> None:
    if len(text) > max_chars:
        raise Rejected(
            413,
            "message_too_long",
            f"The message has {len(text)} characters; the limit is {max_chars}.",
        )
