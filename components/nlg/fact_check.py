"""Checks that a rephrased reply says what its template said — no more, no less.

Used by the NLG before an LLM rephrasing may replace a template. Each check returns a short
reason code; an empty list means the candidate is safe to send.

:func:`check_rephrase` guards the facts; :func:`check_tone` the register: an apology or a
greeting in the template must survive the rephrasing (a blind review found a tuned model
turning "Sorry, order ... is delayed" into "Sure! Order ... is delayed").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from components.text import language_of

URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# numbers incl. decimals/thousands/times/dates, and ids that mix letters and digits (KF100234)
NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")
CODE = re.compile(r"\b(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9-]{3,}\b")
# capitalised words that are not sentence-initial: shop, brand and product names
PROPER = re.compile(r"(?<![.!?:]\s)(?<!^)\b[A-Z][a-zA-Z]+(?:\s+[A-Z][a-zA-Z]+)*\b")


def _norm_numbers(text: str) -> list[str]:
    return sorted(n.replace(",", "") for n in NUMBER.findall(text))


def protected_facts(template: str, slot_values: Iterable[str] = ()) -> set[str]:
    """Strings that must appear verbatim in any rephrasing of ``template``."""
    facts = set(URL.findall(template)) | set(EMAIL.findall(template)) | set(CODE.findall(template))
    facts |= {m.strip() for m in PROPER.findall(template) if len(m.strip()) > 1}
    facts |= {v for v in slot_values if v and v in template}
    return facts


def check_rephrase(
    template: str,
    candidate: str,
    slot_values: Iterable[str] = (),
    min_ratio: float = 0.4,
    max_ratio: float = 2.5,
) -> list[str]:
    """Compare a candidate rephrasing with its template.

    Returns:
        Reason codes for every failed check (empty when the candidate is acceptable):
        ``empty``, ``too_short``, ``too_long``, ``missing_fact``, ``changed_numbers``,
        ``new_url``, ``new_email``, ``language``.
    """
    reasons: list[str] = []
    cand = candidate.strip()
    if not cand:
        return ["empty"]
    if len(cand) < min_ratio * len(template):
        reasons.append("too_short")
    if len(cand) > max_ratio * len(template) + 20:
        reasons.append("too_long")
    if any(fact not in cand for fact in protected_facts(template, slot_values)):
        reasons.append("missing_fact")
    if _norm_numbers(cand) != _norm_numbers(template):
        reasons.append("changed_numbers")
    if set(URL.findall(cand)) - set(URL.findall(template)):
        reasons.append("new_url")
    if set(EMAIL.findall(cand)) - set(EMAIL.findall(template)):
        reasons.append("new_email")
    if language_of(cand) != language_of(template):
        reasons.append("language")
    return reasons


APOLOGY = re.compile(
    r"\b(sorry|apologi[sz]e|apologies|unfortunately|afraid)\b|抱歉|对不起|不好意思|遗憾",
    re.IGNORECASE,
)
GREETING = re.compile(
    r"\b(hello|hi|hey|welcome|good (morning|afternoon|evening))\b|您好|你好|欢迎", re.IGNORECASE
)


# the prompt's own framing showing up in a reply ("Here's a rewritten reply:", "Customer: ...")
PROMPT_LEAK = re.compile(
    r"\brewrit(e|ten|ing)\b|^\s*(customer|assistant)\s*:|改写",
    re.IGNORECASE | re.MULTILINE,
)


def check_tone(template: str, candidate: str) -> list[str]:
    """Whether a candidate keeps the template's register and none of the prompt's framing.

    Returns:
        ``lost_apology`` (the template apologises, the candidate does not),
        ``lost_greeting`` (the template opens with a greeting, the candidate has none) and/or
        ``prompt_leak`` (the candidate talks about rewriting, or quotes a chat turn).
    """
    reasons = []
    if PROMPT_LEAK.search(candidate) and not PROMPT_LEAK.search(template):
        reasons.append("prompt_leak")
    if APOLOGY.search(template) and not APOLOGY.search(candidate):
        reasons.append("lost_apology")
    if GREETING.match(template.strip()) and not GREETING.search(candidate):
        reasons.append("lost_greeting")
    return reasons


def check_reply(template: str, candidate: str, slot_values: Iterable[str] = ()) -> list[str]:
    """Every check the NLG applies before a rephrasing may replace its template.

    The facts (:func:`check_rephrase`) and the register (:func:`check_tone`).
    """
    return check_rephrase(template, candidate, slot_values) + check_tone(template, candidate)
