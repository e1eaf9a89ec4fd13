"""The guard engine: sensitive-word matching shared by every path that carries text.

One engine serves the NLU guard component (user input), the NLG (rephrased output) and the
action server (knowledge answers, free text from actions). Matching runs on a normalised copy
of the text so that simple evasions (``F*U*C*K``, full-width letters, zero-width characters,
``去 死``, repeated letters, ``$h1t``) still hit, and every hit is mapped back to character
offsets in the *original* text, so masking never shifts the rest of the message.

The lexicon is a TSV file: ``term<TAB>category<TAB>severity<TAB>action`` where ``action`` is
``block`` (the whole message is refused), ``mask`` (the span becomes ``***``) or ``flag``
(reported only). Lines starting with ``#`` are comments.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path

from components.errors import ConfigError

DEFAULT_LEXICON = Path(__file__).resolve().parent / "lexicons" / "default.tsv"

ACTIONS = ("flag", "mask", "block")  # ordered by strength
_ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad"}
_LEET = {"@": "a", "$": "s", "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"}
MASK = "***"


@dataclass(frozen=True)
class LexiconEntry:
    """One sensitive term with what to do when it occurs."""

    term: str
    category: str
    severity: int = 1
    action: str = "flag"


@dataclass(frozen=True)
class GuardHit:
    """A lexicon match, with offsets into the original text (``end`` exclusive)."""

    term: str
    category: str
    severity: int
    action: str
    start: int
    end: int


@dataclass
class GuardResult:
    """Everything the guard found in one text."""

    hits: list[GuardHit] = field(default_factory=list)

    @property
    def action(self) -> str | None:
        """The strongest action among the hits, or ``None`` when the text is clean."""
        if not self.hits:
            return None
        return max((h.action for h in self.hits), key=ACTIONS.index)

    @property
    def blocked(self) -> bool:
        """Whether the text must not be used at all."""
        return self.action == "block"

    @property
    def categories(self) -> list[str]:
        """Sorted distinct categories of the hits."""
        return sorted({h.category for h in self.hits})

    def as_dict(self) -> dict:
        """JSON-serialisable summary (offsets and categories, never the matched text)."""
        return {
            "action": self.action,
            "categories": self.categories,
            "hits": [{k: v for k, v in asdict(h).items() if k != "term"} for h in self.hits],
        }


def load_lexicon(path: str | Path) -> list[LexiconEntry]:
    """Read a lexicon TSV file.

    Raises:
        ConfigError: when the file is missing or a line is malformed (names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("lexicon", str(path), "an existing TSV lexicon file", component="guard")
    entries = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("\t")]
        term, category = parts[0], parts[1] if len(parts) > 1 else "sensitive"
        try:
            severity = int(parts[2]) if len(parts) > 2 else 1
        except ValueError:
            raise ConfigError(
                f"{path.name}:{lineno} severity", parts[2], "an integer 1-3", component="guard"
            ) from None
        action = parts[3] if len(parts) > 3 else "flag"
        if action not in ACTIONS:
            raise ConfigError(
                f"{path.name}:{lineno} action", action, f"one of {ACTIONS}", component="guard"
            )
        entries.append(LexiconEntry(term, category, severity, action))
    return entries


def _is_separator(ch: str) -> bool:
    """Whitespace, punctuation and symbols that evaders insert between letters."""
    if ch in _ZERO_WIDTH:
        return True
    cat = unicodedata.category(ch)
    return cat[0] in "ZPS" or cat in ("Cc", "Cf")


def normalize(text: str) -> tuple[str, list[int]]:
    """Normalise ``text`` for matching and map each output char to its source offset.

    Applies NFKC (full/half width, stylised letters), case folding, drops zero-width
    characters and separators, maps leetspeak digits inside words, and collapses runs of the
    same character.

    Returns:
        The normalised string and, for each of its characters, the index in ``text``.
    """
    out: list[str] = []
    offsets: list[int] = []
    n = len(text)
    skipped = False  # a separator since the last kept char: "this shit" keeps both s
    for i, ch in enumerate(text):
        if _is_separator(ch) and ch not in _LEET:
            skipped = True
            continue
        if ch in _LEET:
            prev_alpha = i > 0 and text[i - 1].isalpha()
            next_alpha = i + 1 < n and text[i + 1].isalpha()
            if prev_alpha or next_alpha:
                ch = _LEET[ch]
            elif _is_separator(ch):
                skipped = True
                continue
        for piece in unicodedata.normalize("NFKC", ch).casefold():
            if _is_separator(piece):
                skipped = True
                continue
            if out and out[-1] == piece and not skipped:
                continue  # collapse repeats: "fuuuck" -> "fuck"
            out.append(piece)
            offsets.append(i)
            skipped = False
    return "".join(out), offsets


def _normalize_term(term: str) -> str:
    return normalize(term)[0]


def _alternation(terms: Iterable[str]) -> re.Pattern | None:
    """One regex matching any of ``terms``, longest first (None when there are none)."""
    ordered = sorted(terms, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


def _wordish(ch: str) -> bool:
    """A character that continues an ASCII word (letters, digits, apostrophe, full width)."""
    folded = unicodedata.normalize("NFKC", ch)
    return folded == "'" or (len(folded) == 1 and folded.isascii() and folded.isalnum())


class GuardEngine:
    """Sensitive-word matcher over normalised text.

    Args:
        entries: Lexicon entries to match.
        allow: Terms that must never be reported (e.g. product names that contain a term).
    """

    def __init__(self, entries: Sequence[LexiconEntry], allow: Iterable[str] = ()) -> None:
        self._entries: dict[str, LexiconEntry] = {}
        for entry in entries:
            key = _normalize_term(entry.term)
            if key:
                self._entries[key] = entry
        self._pattern = _alternation(self._entries)
        self._allow_pattern = _alternation({_normalize_term(a) for a in allow} - {""})

    @classmethod
    def from_files(
        cls, lexicons: Sequence[str | Path] = (), allow: Iterable[str] = ()
    ) -> GuardEngine:
        """Build an engine from lexicon files (the shipped default when none are given)."""
        paths = list(lexicons) or [DEFAULT_LEXICON]
        entries = [e for p in paths for e in load_lexicon(p)]
        return cls(entries, allow)

    def __len__(self) -> int:
        return len(self._entries)

    def scan(self, text: str) -> GuardResult:
        """Find every lexicon term in ``text`` (offsets refer to ``text``)."""
        result = GuardResult()
        if not text or self._pattern is None:
            return result
        norm, offsets = normalize(text)
        allowed = (
            [(m.start(), m.end()) for m in self._allow_pattern.finditer(norm)]
            if self._allow_pattern
            else []
        )
        for match in self._pattern.finditer(norm):
            if any(a <= match.start() and match.end() <= b for a, b in allowed):
                continue  # inside an allow-listed word ("Scunthorpe")
            key = match.group(0)
            entry = self._entries[key]
            positions = offsets[match.start() : match.end()]
            start, end = positions[0], positions[-1] + 1
            if key.isascii() and not self._is_whole_words(text, positions, entry.term):
                continue  # "class hit" / "Let's hit it" must not match "shit"
            result.hits.append(
                GuardHit(entry.term, entry.category, entry.severity, entry.action, start, end)
            )
        return result

    @staticmethod
    def _is_whole_words(text: str, positions: list[int], term: str) -> bool:
        """Whether an ASCII match covers whole words of the original text.

        The match must start and end on word boundaries, and when it joins several original
        words, either the term has that many words ("kill yourself") or every piece is a single
        letter (the spaced-out evasion "f u c k", "F*U*C*K").
        """
        start, end = positions[0], positions[-1] + 1
        if (start > 0 and _wordish(text[start - 1])) or (end < len(text) and _wordish(text[end])):
            return False
        pieces, size = [], 1
        for prev, cur in pairwise(positions):
            gap = text[prev + 1 : cur]
            # zero-width characters are invisible: they do not separate words
            if any(_is_separator(c) and c not in _ZERO_WIDTH for c in gap):
                pieces.append(size)
                size = 1
            else:
                size += 1
        pieces.append(size)
        return len(pieces) == 1 or len(pieces) == len(term.split()) or max(pieces) == 1

    def mask(self, text: str, result: GuardResult | None = None) -> str:
        """Replace every ``mask``/``block`` hit in ``text`` by ``***``."""
        result = result or self.scan(text)
        spans = sorted((h.start, h.end) for h in result.hits if h.action != "flag")
        if not spans:
            return text
        pieces, last = [], 0
        for start, end in spans:
            if start < last:
                continue
            pieces.append(text[last:start])
            pieces.append(MASK)
            last = end
        pieces.append(text[last:])
        return "".join(pieces)


_DEFAULT_ENGINE: GuardEngine | None = None


def default_engine() -> GuardEngine:
    """The process-wide engine built from the shipped lexicon (built once)."""
    global _DEFAULT_ENGINE
    if _DEFAULT_ENGINE is None:
        _DEFAULT_ENGINE = GuardEngine.from_files()
    return _DEFAULT_ENGINE
