"""Masking of serialised Rasa events: one definition of "what in an event is personal data".

Used by the masking tracker store (before events are saved) and the masking event broker
(before events are published), so both write exactly the same masked form.
"""

from __future__ import annotations

import copy
from typing import Any

from components.privacy.pii import PIIMasker


def mask_value(masker: PIIMasker, value: Any) -> Any:
    """``value`` with every string inside it (lists and dicts included) masked."""
    if isinstance(value, str):
        return masker.mask(value)
    if isinstance(value, list):
        return [mask_value(masker, v) for v in value]
    if isinstance(value, dict):
        return {k: mask_value(masker, v) for k, v in value.items()}
    return value


def mask_event(masker: PIIMasker, event: dict) -> dict:
    """A copy of one serialised event with personal data masked.

    User and bot texts, the text and entity values in parse data, bot payloads (buttons,
    custom data), slot values and channel metadata are masked; ids, names of intents, actions
    and slots and timestamps are kept.
    """
    event = copy.deepcopy(event)
    kind = event.get("event")
    if kind in ("user", "bot") and event.get("text"):
        event["text"] = masker.mask(event["text"])
    if kind == "user":
        parse = event.get("parse_data") or {}
        if parse.get("text"):
            parse["text"] = masker.mask(parse["text"])
        for entity in parse.get("entities") or []:
            entity["value"] = mask_value(masker, entity.get("value"))
    if kind == "bot" and event.get("data"):
        event["data"] = mask_value(masker, event["data"])
    if kind == "slot":
        event["value"] = mask_value(masker, event.get("value"))
    if kind == "entities":
        event["entities"] = mask_value(masker, event.get("entities"))
    if event.get("metadata"):
        event["metadata"] = mask_value(masker, event["metadata"])
    return event
