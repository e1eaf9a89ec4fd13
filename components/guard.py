"""The guard engine: sensitive-word matching shared by every path that carries text.

One engine serves the NLU guard component (user input), the NLG (rephrased output), the
knowledge answers and the action server (free text from actions). Matching runs on a
normalised copy of the text so that evasions still hit, and every hit is mapped back to
character offsets in the *original* text, so masking never shifts the rest of the message.

Normalisation is one lookup per code point (a numpy table built once per process) plus
vectorised passes: NFKC (full/half width), accents stripped, case folded, stylised letters NFKC
misses (negative circled, squared, regional-indicator and small-capital letters, dingbat
digits), Cyrillic/Greek look-alikes, traditional → simplified Chinese (OpenCC's character
tables), zero-width characters and inserted separators/symbols dropped (``f*u*c*k``,
``法 轮``), runs of a repeated character collapsed (Latin letters: any run; Chinese: three or
more, since "妈妈" is a word), leetspeak digits and symbols inside words (``$h1t``, ``b!tch``).
Chinese terms are also matched by their full pinyin (``shabi``, ``sha bi``). Matching is one
Aho-Corasick automaton (ahocorasick-rs) over every term variant, so the cost does not grow with
the lexicon; the offset map is only built for texts that have a candidate hit.

The lexicon is a TSV file: ``term<TAB>category<TAB>severity<TAB>action`` where ``action`` is
``block`` (the whole message is refused), ``mask`` (the span becomes ``***``) or ``flag``
(reported only); actions can be overridden per category. Lines starting with ``#`` are
comments. English (ASCII) terms must cover whole words of the original text; an allow-list
of phrases ("Scunthorpe", "成人票") suppresses hits inside them.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import chain, pairwise
from pathlib import Path
from typing import Any

from components.errors import ConfigError

LEXICON_DIR = Path(__file__).resolve().parent / "lexicons"
DEFAULT_LEXICON = LEXICON_DIR / "default.tsv"
DEFAULT_LEXICONS = (DEFAULT_LEXICON, LEXICON_DIR / "en_curated.tsv", LEXICON_DIR / "zh_curated.tsv")
DEFAULT_ALLOW = LEXICON_DIR / "allow.txt"

ACTIONS = ("flag", "mask", "block")  # ordered by strength
MASK = "***"
_BARRIER = "\uffff"  # a noncharacter: survives normalisation, in no term (see scan_many)
_SEP = " "  # every separator folds to a space; spaces are dropped after repeats collapse
_ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad"}
_LEET = {
    "@": "a",
    "$": "s",
    "!": "i",
    "|": "i",
    "0": "o",
    "1": "i",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
}
_SYMBOLS = [ord(c) for c in _LEET if not c.isalnum()]
_REPEATS = re.compile(r"(.)\1+", re.DOTALL)
_REPEATS_OR_SINGLE = re.compile(r"(.)\1*", re.DOTALL)
# Letters that look Latin but are Cyrillic or Greek ("сunt", "ѕhit").
_CONFUSABLES = dict(
    zip("асеорхуіјѕԁԛԝаеорсхукмнвтαοερτυνκιχ", "aceopxyijsdqwaeopcxykmhbtaoeptuvkix", strict=True)
)
_STYLED_LETTER = re.compile(
    r"^(?:NEGATIVE |)(?:CIRCLED|SQUARED|PARENTHESIZED|REGIONAL INDICATOR SYMBOL|"
    r"NEGATIVE SQUARED|LATIN LETTER SMALL CAPITAL|MODIFIER LETTER CAPITAL|MODIFIER LETTER SMALL)"
    r"(?: LATIN)?(?: CAPITAL| SMALL)?(?: LETTER)? ([A-Z])$"
)
_STYLED_DIGIT = re.compile(
    r"(?:DINGBAT|NEGATIVE CIRCLED|CIRCLED).* DIGIT (ZERO|ONE|TWO|THREE|FOUR"
    r"|FIVE|SIX|SEVEN|EIGHT|NINE)$"
)
_DIGITS = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()
_RANGES = (
    range(0x80, 0x10000),
    range(0x1D400, 0x1D800),
    range(0x1F100, 0x1F200),
    range(0xE0000, 0xE0080),
)


@dataclass(frozen=True)
class LexiconEntry:
    """One sensitive term with what to do when it occurs."""

    term: str
    category: str
    severity: int = 1
    action: str = "flag"


@dataclass(slots=True)
class GuardHit:
    """A lexicon match, with offsets into the original text (``end`` exclusive)."""

    term: str
    category: str
    severity: int
    action: str
    start: int
    end: int


@dataclass(slots=True)
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


def load_allow_list(path: str | Path) -> list[str]:
    """Read an allow-list file (one phrase per line, ``#`` comments)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("allow", str(path), "an existing allow-list file", component="guard")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]


def _is_separator(ch: str) -> bool:
    """Whitespace, punctuation and symbols that evaders insert between letters."""
    if ch in _ZERO_WIDTH:
        return True
    cat = unicodedata.category(ch)
    return cat[0] in "ZPS" or cat in ("Cc", "Cf")


@functools.cache
def _t2s() -> dict[str, str]:
    """Traditional (and Taiwan/Hong Kong variant) → simplified characters, from OpenCC."""
    import opencc

    folder = Path(opencc.__file__).parent / "dictionary"
    variants: dict[str, str] = {}
    for name in ("TWVariantsRev.txt", "HKVariantsRev.txt"):
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            src, _, dst = line.partition("\t")
            if len(src) == 1 and dst:
                variants[src] = dst.split()[0]
    table: dict[str, str] = {}
    for line in (folder / "TSCharacters.txt").read_text(encoding="utf-8").splitlines():
        src, _, dst = line.partition("\t")
        if len(src) == 1 and dst:
            table[src] = dst.split()[0]
    for src, trad in variants.items():
        table.setdefault(src, table.get(trad, trad))
    return table


def _fold_char(ch: str, t2s: Mapping[str, str]) -> str:
    """What one character becomes before matching (may be empty or several characters)."""
    if ch in _ZERO_WIDTH:
        return _SEP
    name = unicodedata.name(ch, "")
    styled = _STYLED_LETTER.match(name)
    if styled:
        return styled.group(1).lower()
    digit = _STYLED_DIGIT.match(name)
    if digit:
        return str(_DIGITS.index(digit.group(1)))
    decomposed = unicodedata.normalize("NFKD", ch)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    folded = unicodedata.normalize("NFKC", stripped or decomposed).casefold()
    folded = "".join(_CONFUSABLES.get(c, c) for c in folded)
    folded = "".join(t2s.get(c, c) for c in folded)
    out = []
    for c in folded:
        if c in _LEET:
            out.append(c)
        elif _is_separator(c) or unicodedata.category(c) == "Mn":
            out.append(_SEP)
        else:
            out.append(c)
    return "".join(out)


@functools.cache
def fold_table() -> dict[int, str]:
    """What each character becomes before matching, where that differs (built once, ~0.5 s)."""
    t2s = _t2s()
    table: dict[int, str] = {}
    for cp in range(0x80):
        ch = chr(cp)
        if ch.isupper():
            table[cp] = ch.lower()
        elif ch not in _LEET and not ch.isalnum():
            table[cp] = _SEP
    for cp in chain.from_iterable(_RANGES):
        ch = chr(cp)
        if 0xD800 <= cp < 0xE000:
            continue
        folded = _fold_char(ch, t2s)
        if folded != ch:
            table[cp] = folded
    return table


_EXPANDS = 0x200000  # lut values from here on: index of a multi-character expansion


@dataclass(frozen=True)
class _Folder:
    """The fold table as arrays: one lookup per code point, vectorised with numpy."""

    lut: Any  # np.ndarray[uint32], 0x110000 entries: code point → folded code point (or expansion)
    leet: Any  # np.ndarray[uint32] of 128 entries: leetspeak symbol → letter
    is_leet: Any  # np.ndarray[bool] of 128 entries
    expansions: list[Any]  # folded code points of each multi-character expansion ("ﬁ" → "fi")


@functools.cache
def _folder() -> _Folder:
    import numpy as np

    lut = np.arange(0x110000, dtype=np.uint32)
    expansions = []
    for cp, value in fold_table().items():
        letters = value.replace(_SEP, "")
        if len(value) == 1:
            lut[cp] = ord(value)
        elif not letters:
            lut[cp] = ord(_SEP)
        elif len(letters) == 1:
            lut[cp] = ord(letters)
        else:
            lut[cp] = _EXPANDS + len(expansions)
            expansions.append(np.array([ord(c) for c in value], dtype=np.uint32))
    leet = np.arange(128, dtype=np.uint32)
    is_leet = np.zeros(128, dtype=bool)
    for symbol, letter in _LEET.items():
        leet[ord(symbol)] = ord(letter)
        is_leet[ord(symbol)] = True
    return _Folder(lut, leet, is_leet, expansions)


def _fold_codes(text: str) -> tuple[Any, Any | None]:
    """Fold ``text`` to code points (before repeats collapse), with a source map if expanded.

    Returns:
        ``(codes, source)``: ``source[i]`` is the index in ``text`` of ``codes[i]``, or None
        when no character expanded (then the indices are the same).
    """
    import numpy as np

    folder = _folder()
    source = None
    raw = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    codes = folder.lut[raw]
    if len(codes) and codes.max() >= _EXPANDS:  # rare: "㎡" → "m2", "™" → "tm"
        at = np.flatnonzero(codes >= _EXPANDS).tolist()
        pieces, sources, last = [], [], 0
        for i in at:
            part = folder.expansions[int(codes[i]) - _EXPANDS]
            pieces += [codes[last:i], part]
            sources += [np.arange(last, i), np.full(len(part), i)]
            last = i + 1
        codes = np.concatenate([*pieces, codes[last:]])
        source = np.concatenate([*sources, np.arange(last, len(raw))])
    at = np.flatnonzero(codes < 128)  # leetspeak only concerns ASCII: work on that part
    sub = codes[at]
    leetish = folder.is_leet[sub]
    if leetish.any():  # "$h1t", "7i77y": leet symbols in a run of word characters with a letter
        letter = (sub >= 97) & (sub <= 122)
        wordy = letter | leetish | ((sub >= 48) & (sub <= 57))
        run_start = wordy.copy()
        run_start[1:] &= ~(wordy[:-1] & (np.diff(at) == 1))
        run = np.cumsum(run_start) * wordy  # 0 outside runs
        has_letter = np.bincount(run, weights=letter, minlength=int(run.max()) + 1) > 0
        has_letter[0] = False
        sub = np.where(leetish & has_letter[run], folder.leet[sub], sub)
        sub[np.isin(sub, _SYMBOLS)] = ord(_SEP)  # symbols that were not letters
        codes[at] = sub
    return codes, source


def _kept(codes: Any) -> Any:
    """Mask of the characters that survive: no separators, one of each run of repeats."""
    keep = codes != ord(_SEP)
    keep[1:] &= codes[1:] != codes[:-1]
    return keep


def _decode(codes: Any) -> str:
    return codes.tobytes().decode("utf-32-le", "surrogatepass")


def _folded(text: str) -> str:
    """``text`` folded character by character (separators become spaces, runs kept)."""
    return _decode(_fold_codes(text)[0])


def _squash(folded: str) -> str:
    """Collapse runs of one character (not across separators), then drop the separators."""
    return _REPEATS.sub(r"\1", folded).replace(_SEP, "")


def normalize(text: str) -> tuple[str, list[int]]:
    """Normalise ``text`` for matching and map each output char to its source offset.

    Returns:
        The normalised string and, for each of its characters, the index in ``text``.
    """
    import numpy as np

    codes, source = _fold_codes(text)
    keep = _kept(codes)
    positions = np.flatnonzero(keep)
    if source is not None:
        positions = source[positions]
    return _decode(codes[keep]), positions.tolist()


def _wordish(ch: str) -> bool:
    """A character that continues an ASCII word (letters, digits, apostrophe, styled forms)."""
    folded = fold_table().get(ord(ch), ch)
    return ch in "'’" or (len(folded) == 1 and folded.isascii() and folded.isalnum())


def _splits_words(ch: str) -> bool:
    """A visible separator between words (zero-width and combining marks are not)."""
    if ch in _ZERO_WIDTH or unicodedata.category(ch) in ("Mn", "Me"):
        return False
    return fold_table().get(ord(ch), ch) == _SEP


def _has_cjk(term: str) -> bool:
    return any("\u3400" <= c <= "\u9fff" for c in term)


@dataclass(frozen=True)
class _Key:
    entry: int  # index into the engine's entries
    ref: str  # the term as written, folded, without separators (runs not collapsed)
    pinyin: bool  # matched through the term's pinyin
    ascii: bool  # an English-like key: must cover whole words of the original text


def _runs(text: str) -> list[tuple[str, int]]:
    return [(m.group(1), len(m.group(0))) for m in _REPEATS_OR_SINGLE.finditer(text)]


def _stretches(found: str, ref: str) -> bool:
    """Whether ``found`` is ``ref`` with some characters repeated more often.

    Latin letters may repeat freely ("fuuuck"); a Chinese character only three or more times
    ("傻傻傻逼"), because doubled characters are ordinary words ("妈妈的" is not "妈的").
    """
    if len(found) <= len(ref):
        return False  # equal strings were accepted before; stretching never shortens
    a, b = _runs(found), _runs(ref)
    if len(a) != len(b):
        return False
    for (ch, n), (ref_ch, ref_n) in zip(a, b, strict=True):
        if ch != ref_ch or n < ref_n:
            return False
        if n != ref_n and not ch.isascii() and n < 3:
            return False
    return True


class GuardEngine:
    """Sensitive-word matcher over normalised text.

    Args:
        entries: Lexicon entries to match.
        allow: Phrases inside which nothing is reported (brand names, "成人票", "Scunthorpe").
        category_actions: Action per category, overriding the lexicon's (e.g. ``{"political":
            "flag"}``).
        pinyin: Also match Chinese terms written in full pinyin (``shabi``, ``sha bi``).
        pinyin_min_letters: Shortest pinyin key matched (short keys collide with English words).
    """

    def __init__(
        self,
        entries: Sequence[LexiconEntry],
        allow: Iterable[str] = (),
        category_actions: Mapping[str, str] | None = None,
        pinyin: bool = True,
        pinyin_min_letters: int = 5,
    ) -> None:
        import ahocorasick_rs

        for category, action in (category_actions or {}).items():
            if action not in ACTIONS:
                raise ConfigError(
                    f"category_actions.{category}", action, f"one of {ACTIONS}", component="guard"
                )
        overrides = dict(category_actions or {})
        self._entries = [
            LexiconEntry(e.term, e.category, e.severity, overrides.get(e.category, e.action))
            for e in entries
        ]
        # one automaton key may stand for several terms ("jigaboo", "jiggaboo" → "jigabo")
        keys: dict[str, dict[tuple[str, bool], _Key]] = {}
        for index, entry in enumerate(self._entries):
            for key, ref, is_pinyin in self._variants(entry.term, pinyin, pinyin_min_letters):
                same = keys.setdefault(key, {})
                previous = same.get((ref, is_pinyin))
                if previous is None or self._stronger(index, previous.entry):
                    same[(ref, is_pinyin)] = _Key(index, ref, is_pinyin, key.isascii())
        rank = {a: i for i, a in enumerate(ACTIONS)}
        self._keys = [
            sorted(same.values(), key=lambda k: -rank[self._entries[k.entry].action])
            for same in keys.values()
        ]
        self._automaton = ahocorasick_rs.AhoCorasick(list(keys)) if keys else None
        # for each automaton key, the allow-listed phrases that contain it (checked per hit)
        phrases = {v[0] for phrase in allow for v in self._variants(phrase, False, 0)}
        self._allow: dict[int, list[tuple[str, int]]] = {}
        for index, key in enumerate(keys):
            for phrase in phrases:
                at = phrase.find(key)
                while at >= 0:
                    self._allow.setdefault(index, []).append((phrase, at))
                    at = phrase.find(key, at + 1)
        import numpy as np

        # keys whose plain match needs no check: the strongest term is Chinese and written
        # exactly like the key, so it is the one the per-match checks would pick
        self._simple = np.array(
            [
                not same[0].ascii
                and not same[0].pinyin
                and same[0].ref == key
                and index not in self._allow
                for index, (key, same) in enumerate(zip(keys, self._keys, strict=True))
            ],
            dtype=bool,
        )
        # keys no term is written as (only a collapsed "妈妈" → "妈"): a plain match is no hit
        self._collapsed_only = np.array(
            [all(k.ref != key for k in same) for key, same in zip(keys, self._keys, strict=True)],
            dtype=bool,
        )
        self._first_entry = np.array([same[0].entry for same in self._keys], dtype=np.int64)
        self._entry_rank = np.array([rank[e.action] for e in self._entries], dtype=np.int64)

    def _stronger(self, index: int, other: int) -> bool:
        a, b = self._entries[index], self._entries[other]
        return (ACTIONS.index(a.action), a.severity) > (ACTIONS.index(b.action), b.severity)

    @staticmethod
    def _variants(term: str, pinyin: bool, min_letters: int) -> list[tuple[str, str, bool]]:
        """Matching keys of one term as ``(key, reference form, is pinyin)``.

        Keys are the collapsed and the uncollapsed form (the text side collapses repeats only
        when no separator splits them), and the full pinyin of Chinese terms.
        """
        folded = _folded(term)
        ref = folded.replace(_SEP, "")
        out = {(_squash(folded), ref, False), (ref, ref, False)}
        if pinyin and _has_cjk(term):
            from pypinyin import lazy_pinyin

            spelled = "".join(lazy_pinyin(ref))
            if spelled.isascii() and spelled.isalpha() and len(spelled) >= min_letters:
                out |= {(_squash(spelled), spelled, True), (spelled, spelled, True)}
        return [v for v in out if v[0]]

    @classmethod
    def from_files(
        cls,
        lexicons: Sequence[str | Path] = (),
        allow: Iterable[str] = (),
        allow_files: Sequence[str | Path] | None = None,
        **kwargs,
    ) -> GuardEngine:
        """Build an engine from lexicon files (the shipped defaults when none are given)."""
        paths = list(lexicons) or [p for p in DEFAULT_LEXICONS if p.is_file()]
        entries = [e for p in paths for e in load_lexicon(p)]
        allow_paths = [DEFAULT_ALLOW] if allow_files is None else list(allow_files)
        phrases = list(allow) + [a for p in allow_paths for a in load_allow_list(p)]
        return cls(entries, phrases, **kwargs)

    def __len__(self) -> int:
        """Number of distinct matching keys (terms and their variants)."""
        return len(self._keys)

    def scan_many(self, texts: Sequence[str]) -> list[GuardResult]:
        """Scan a batch of texts in one pass (much faster for many short messages).

        The texts are joined with a character that survives normalisation and is in no term,
        so no match can span two texts; hits are split back with offsets into each text.
        """
        texts = list(texts)
        joined = _BARRIER.join(texts)
        if joined.count(_BARRIER) != max(len(texts) - 1, 0):
            return [self.scan(t) for t in texts]  # a text contains the barrier itself
        import numpy as np

        results = [GuardResult() for _ in texts]
        starts, ends, entries = self._find(joined)
        if not len(starts):
            return results
        offsets = np.fromiter(
            itertools.accumulate((len(t) + 1 for t in texts[:-1]), initial=0),
            dtype=np.int64,
            count=len(texts),
        )
        owner = np.searchsorted(offsets, starts, side="right") - 1
        shift = offsets[owner]
        for i, start, end, index in zip(
            owner.tolist(),
            (starts - shift).tolist(),
            (ends - shift).tolist(),
            entries.tolist(),
            strict=True,
        ):
            e = self._entries[index]
            results[i].hits.append(GuardHit(e.term, e.category, e.severity, e.action, start, end))
        return results

    def scan(self, text: str) -> GuardResult:
        """Find every lexicon term in ``text`` (offsets refer to ``text``)."""
        starts, ends, entries = self._find(text)
        hits = []
        for start, end, index in zip(starts.tolist(), ends.tolist(), entries.tolist(), strict=True):
            e = self._entries[index]
            hits.append(GuardHit(e.term, e.category, e.severity, e.action, start, end))
        return GuardResult(hits)

    def _find(self, text: str) -> tuple[Any, Any, Any]:
        """Hit spans and entry indices in ``text`` as arrays ``(starts, ends, entries)``."""
        import numpy as np

        none = np.zeros(0, dtype=np.int64)
        if not text or self._automaton is None:
            return none, none, none
        codes, source = _fold_codes(text)
        keep = _kept(codes)
        norm = _decode(codes[keep])
        found = self._automaton.find_matches_as_indexes(norm, overlapping=True)
        if not found:
            return none, none, none  # the common case: no offset map needed
        folded_at = np.flatnonzero(keep)  # norm index → folded index
        text_at = folded_at if source is None else source[folded_at]  # → index in text
        # offsets of every match at once (numpy); plain Chinese matches need no further check
        matches = np.asarray(found, dtype=np.int64)
        indices, starts, ends = matches[:, 0], matches[:, 1], matches[:, 2]
        firsts = folded_at[starts]
        lasts = folded_at[ends - 1] + 1
        size = len(codes)
        repeats = codes[np.minimum(lasts, size - 1)] == codes[lasts - 1]
        for i in np.flatnonzero((lasts < size) & repeats).tolist():
            while lasts[i] < size and codes[lasts[i]] == codes[lasts[i] - 1]:
                lasts[i] += 1  # the match ends after the repeats of its last letter ("jigaboo")
        text_starts = firsts if source is None else source[firsts]
        text_ends = lasts if source is None else source[lasts - 1] + 1
        plain = lasts - firsts == ends - starts  # no separator or repeat inside the match
        simple = self._simple[indices] & plain
        hit_starts, hit_ends = [text_starts[simple]], [text_ends[simple]]
        hit_entries = [self._first_entry[indices[simple]]]
        checked = []
        for i in np.flatnonzero(~simple & ~(plain & self._collapsed_only[indices])).tolist():
            index, start, end = found[i]
            first, last = int(firsts[i]), int(lasts[i])
            if index in self._allow and any(
                norm.startswith(phrase, start - at) for phrase, at in self._allow[index]
            ):
                continue  # inside an allow-listed phrase ("Scunthorpe")
            if last - first == end - start:
                letters = norm[start:end]  # no separator or repeat inside the match
            else:
                piece = codes[first:last]
                letters = _decode(piece[piece != ord(_SEP)])
            text_end = int(text_ends[i])
            for key in self._keys[index]:  # strongest first
                if letters != key.ref and (key.pinyin or not _stretches(letters, key.ref)):
                    continue  # "but" is not "butt", "see you" is not "seyou"
                if key.ascii:
                    span = text_at[start:end].tolist()
                    term = self._entries[key.entry].term
                    if not self._is_whole_words(text, span, text_end, term, key.pinyin):
                        continue  # "class hit" / "Let's hit it" must not match "shit"
                checked.append((int(text_starts[i]), text_end, key.entry))
                break
        if checked:
            extra = np.asarray(checked, dtype=np.int64)
            hit_starts.append(extra[:, 0])
            hit_ends.append(extra[:, 1])
            hit_entries.append(extra[:, 2])
        return self._outermost(
            np.concatenate(hit_starts), np.concatenate(hit_ends), np.concatenate(hit_entries)
        )

    def _outermost(self, starts: Any, ends: Any, entries: Any) -> tuple[Any, Any, Any]:
        """Hits in text order, without those inside another hit that acts as strongly."""
        import numpy as np

        if not len(starts):
            return starts, ends, entries
        ranks = self._entry_rank[entries]
        order = np.lexsort((-ranks, -ends, starts))  # by start, longest first, strongest first
        starts, ends, entries, ranks = starts[order], ends[order], entries[order], ranks[order]
        keep = np.ones(len(starts), dtype=bool)
        for level in range(len(ACTIONS)):
            reach = np.maximum.accumulate(np.where(ranks >= level, ends, -1))
            before = np.concatenate(([-1], reach[:-1]))  # furthest end of earlier, as strong hits
            keep &= ~((ranks == level) & (before >= ends))
        return starts[keep], ends[keep], entries[keep]

    @staticmethod
    def _is_whole_words(text: str, positions: list[int], end: int, term: str, pinyin: bool) -> bool:
        """Whether an ASCII match covers whole words of the original text.

        The match must start and end on word boundaries, and when it joins several original
        words, either the term has that many words ("kill yourself"), or every piece is a single
        letter (the spaced-out evasion "f u c k", "F*U*C*K"), or it is pinyin (``sha bi``).
        """
        start = positions[0]  # ``end``: after the last letter's repeats ("fuckkk")
        if (start > 0 and _wordish(text[start - 1])) or (end < len(text) and _wordish(text[end])):
            return False
        if pinyin:
            return True
        pieces, size = [], 1
        for prev, cur in pairwise(positions):
            gap = text[prev + 1 : cur]
            if any(_splits_words(c) for c in gap):
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
        merged: list[list[int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        pieces, last = [], 0
        for start, end in merged:
            pieces += [text[last:start], MASK]
            last = end
        pieces.append(text[last:])
        return "".join(pieces)


@functools.cache
def default_engine() -> GuardEngine:
    """The process-wide engine built from the shipped lexicons (built once)."""
    return GuardEngine.from_files()
