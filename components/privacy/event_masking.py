"""Masking of serialised Rasa events: one definition of "what in an event is personal data".

Used by the masking tracker store (before events are saved) and the masking event broker
(before events are published), so both write exactly the same masked form.
"""

from __future__ import annotations

import copy
from typing import Any

from components.privacy.pii import PIIMasker

#: Sender ids at least this long are also replaced where they occur inside a metadata string
#: ("whatsapp:+8613812345678"); shorter ones only where they are the whole value.
MIN_EMBEDDED_SENDER = 6


def mask_value(masker: PIIMasker, value: Any, learned: bool = True) -> Any:
    """``value`` with every string inside it (lists and dicts included) masked.

    ``learned``: whether a person wrote it (see :meth:`PIIMasker.find`).
    """
    if isinstance(value, str):
        return masker.mask(value, learned)
    if isinstance(value, list):
        return [mask_value(masker, v, learned) for v in value]
    if isinstance(value, dict):
        return {k: mask_value(masker, v, learned) for k, v in value.items()}
    return value


def _without_sender(value: Any, sender_id: str, token: str) -> Any:
    """``value`` with the sender id replaced by its token wherever it is (a number included)."""
    if isinstance(value, str):
        if value == sender_id:
            return token
        if len(sender_id) >= MIN_EMBEDDED_SENDER and sender_id in value:
            return value.replace(sender_id, token)
        return value
    if isinstance(value, list):
        return [_without_sender(v, sender_id, token) for v in value]
    if isinstance(value, dict):
        return {k: _without_sender(v, sender_id, token) for k, v in value.items()}
    if isinstance(value, int) and not isinstance(value, bool) and str(value) == sender_id:
        return token  # Telegram-style numeric chat ids
    return value


def mask_event(masker: PIIMasker, event: dict, sender_id: str | None = None) -> dict:
    """A copy of one serialised event with personal data masked.

    User and bot texts, the text and entity values in parse data, bot payloads (buttons,
    custom data), slot values and channel metadata (and Rasa's copy of it in the parse data)
    are masked; ids, names of intents, actions and slots and timestamps are kept. The event's
    ``sender_id`` (when it has one) becomes its
    :meth:`~components.privacy.pii.PIIMasker.sender_token`, and the sender id (``sender_id``, or
    the event's own) is replaced by that token inside the metadata too, where channels copy it.
    The learned name/address recogniser reads what people wrote (user text, parse data, entity
    values); bot texts, payloads, slot values and metadata (ids and settings such as
    ``assistant_id`` or a ticket id) get the rules and the names and addresses already found in
    user text (:meth:`~components.privacy.pii.PIIMasker.find`).
    """
    event = copy.deepcopy(event)
    own = event.get("sender_id")
    sender = sender_id if sender_id is not None else own if isinstance(own, str) else None
    token = masker.sender_token(sender) if sender else None
    if isinstance(own, str) and own:
        event["sender_id"] = masker.sender_token(own)
    kind = event.get("event")
    if kind in ("user", "bot") and event.get("text"):  # the learned recogniser: user text only
        event["text"] = masker.mask(event["text"], learned=kind == "user")
    if kind == "user":
        parse = event.get("parse_data") or {}
        if parse.get("text"):
            parse["text"] = masker.mask(parse["text"])
        for entity in parse.get("entities") or []:
            entity["value"] = mask_value(masker, entity.get("value"))
        if parse.get("metadata"):  # Rasa copies the message's metadata into the parse data
            parse["metadata"] = _masked_metadata(masker, parse["metadata"], sender, token)
    if kind == "bot" and event.get("data"):
        event["data"] = mask_value(masker, event["data"], learned=False)
    if kind == "slot":  # set by forms from user text (found again) or by actions (ids)
        event["value"] = mask_value(masker, event.get("value"), learned=False)
    if kind == "entities":
        event["entities"] = mask_value(masker, event.get("entities"))
    if event.get("metadata"):
        event["metadata"] = _masked_metadata(masker, event["metadata"], sender, token)
    return event


#: Metadata Rasa itself adds to every event: ids, never personal data (a random hex model id can
#: hold an 11-digit run that looks like a mobile number).
RASA_IDS = ("model_id", "assistant_id")


def _masked_metadata(
    masker: PIIMasker, metadata: Any, sender: str | None, token: str | None
) -> Any:
    """Channel metadata with the sender id replaced by its token, then personal data masked."""
    if sender and token and token != sender:
        metadata = _without_sender(metadata, sender, token)
    if isinstance(metadata, dict):
        kept = {k: metadata[k] for k in RASA_IDS if isinstance(metadata.get(k), str)}
        rest = {k: v for k, v in metadata.items() if k not in kept}
        return {**mask_value(masker, rest, learned=False), **kept}
    return mask_value(masker, metadata, learned=False)  # ids and settings, not prose
