"""Log hygiene: personal data is masked in every log line the process writes.

Kefu's own log calls never include user text (they log events with structured fields), but
Rasa and rasa-sdk log whole messages and trackers at debug level ("Received user message ...").
:func:`install` adds a filter to every handler of the root logger that masks personal data in
the formatted message (the same tokens as in storage), so ``rasa run --debug`` and the action
server's debug logs stay clean too. Installed by the masking tracker store (Rasa process) and by
the action package (action server).
"""

from __future__ import annotations

import logging
import re

from components.privacy.pii import PIIMasker
from components.privacy.recognisers import find_pii

# Rasa 3.6 logs structlog events as JSON with non-ASCII characters escaped ("\\u738b")
_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescape(match: re.Match) -> str:
    code = int(match.group(1), 16)
    return match.group(0) if 0xD800 <= code < 0xE000 else chr(code)  # leave surrogates escaped


class PIILogFilter(logging.Filter):
    """Masks personal data in a record's message (never drops a record)."""

    def __init__(self, masker: PIIMasker | None = None) -> None:
        super().__init__()
        self._masker = masker or PIIMasker()

    def filter(self, record: logging.LogRecord) -> bool:
        r"""Replace the record's message by its masked form when it holds personal data.

        JSON-escaped text (Rasa's structured debug events) is unescaped first, so "\u738b..."
        is checked as the Chinese it stands for; a masked message is written unescaped.
        """
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the caller's bug, not ours to raise
            return True
        if "\\u" in message:
            message = _ESCAPED.sub(_unescape, message)
        if find_pii(message):
            record.msg, record.args = self._masker.mask(message), None
        return True


def install(masker: PIIMasker | None = None) -> PIILogFilter:
    """Attach one shared filter to every root handler that lacks it (idempotent); returns it."""
    root = logging.getLogger()
    present = [
        f for owner in (*root.handlers, root) for f in owner.filters if isinstance(f, PIILogFilter)
    ]
    log_filter = present[0] if present else PIILogFilter(masker)
    for handler in root.handlers:
        if not any(isinstance(f, PIILogFilter) for f in handler.filters):
            handler.addFilter(log_filter)
    if not root.handlers and log_filter not in root.filters:
        root.addFilter(log_filter)  # nothing configured yet: guard records at the root logger
    return log_filter
