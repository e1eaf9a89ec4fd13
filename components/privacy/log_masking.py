"""Log hygiene: personal data is masked in every log line the process writes.

Kefu's own log calls never include user text (they log events with structured fields), but
Rasa and rasa-sdk log whole messages and trackers at debug level ("Received user message ...").
:func:`install` adds a filter to every handler of the root logger that masks personal data in
the formatted message (the same tokens as in storage), so ``rasa run --debug`` and the action
server's debug logs stay clean too. Installed by the masking tracker store (Rasa process) and by
the action package (action server).

Rasa also names the conversation in its log lines ("Acquiring lock for conversation
'13812345678'", "sender_id=...", "for sender alice@example.cn"), and a sender id can be a phone
number or an e-mail address: a sender id after such a word (quoted, or unquoted with a digit,
``@`` or ``+`` in it) becomes the same sender token as in the tracker store, and anything else
personal in the line is masked as usual.

IPv4 addresses of the deployment's own services stay readable in logs: loopback
(``127.0.0.0/8``) and private (``10.0.0.0/8``, ``172.16.0.0/12``, ``192.168.0.0/16``) addresses
are what error lines name as endpoints ("http://127.0.0.1:5055/webhook refused"), and they do
not identify a customer outside the deployment's network. Public addresses are masked as before.
This rule is the log filter's only: the shared recogniser still finds every address, so stored
customer text (:mod:`components.privacy.event_masking`) is masked exactly as before — a customer
who writes their router's address is not the deployment naming its own endpoint, and a change
there would change what is stored. (The recogniser finds IPv4 only, so ``::1`` is never masked.)
"""

from __future__ import annotations

import ipaddress
import logging
import re

from components.privacy.pii import PIIMasker
from components.privacy.recognisers import TOKEN, PIISpan

# Rasa 3.6 logs structlog events as JSON with non-ASCII characters escaped ("\\u738b")
_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})")
# "conversation ID 'x'", "sender 'x'", "sender_id=x", "\"sender_id\": \"x\"", "for sender x"
_SENDER_IN_LOG = re.compile(
    r"(?i:\b(?:sender|conversation)(?:[ _-]?id)?)"
    r"(?:[\"']?\s*[:=]\s*|\s+)"
    r"(?:(?P<q>[\"'])(?P<quoted>[^\"'\r\n]{1,200})(?P=q)"
    r"|(?P<bare>[^\s\"',;()\[\]{}<>]*[\d@+][^\s\"',;()\[\]{}<>]*))"
)

#: Addresses of the deployment's own services, left readable in log lines (not in storage).
OWN_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128")
)


def own_address(value: str) -> bool:
    """Whether ``value`` is a loopback or private IP address (see :data:`OWN_NETWORKS`)."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return any(address in net for net in OWN_NETWORKS if net.version == address.version)


def _log_spans(spans: list[PIISpan]) -> list[PIISpan]:
    """``spans`` without the IP addresses of the deployment's own services."""
    return [s for s in spans if not (s.type == "IP" and own_address(s.value))]


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
        masked = _SENDER_IN_LOG.sub(self._sender_masked, message)
        spans = _log_spans(self._masker.find_in_log(masked))
        if spans:
            masked = self._masker.replace(masked, spans)
        if masked != message:
            record.msg, record.args = masked, None
        return True

    def _sender_masked(self, match: re.Match) -> str:
        """The matched sender id mention with the id replaced by its sender token."""
        group = "quoted" if match.group("quoted") is not None else "bare"
        sender = match.group(group)
        if group == "bare":
            sender = sender.rstrip(".:")  # end of the sentence
        whole = match.group(0)
        if not sender or TOKEN.fullmatch(sender):
            return whole
        start = match.start(group) - match.start()
        token = self._masker.sender_token(sender)
        return whole[:start] + token + whole[start + len(sender) :]


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
