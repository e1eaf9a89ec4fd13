"""Text normalisation for matching, with a map back to the original offsets.

Normalisation is one lookup per code point (a numpy table built once per process) plus
vectorised passes: NFKC (full/half width), accents stripped, case folded, stylised letters NFKC
misses (negative circled, squared, regional-indicator and small-capital letters, dingbat
digits), Cyrillic/Greek look-alikes, traditional → simplified Chinese (OpenCC's character
tables), zero-width characters and inserted separators/symbols dropped (``f*u*c*k``,
``法 轮``), runs of a repeated character collapsed (Latin letters: any run; Chinese: three or
more, since "妈妈" is a word), leetspeak digits and symbols inside words (``$h1t``, ``b!tch``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

SEP = " "  # every separator folds to a space; spaces are dropped after repeats collapse
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
REPEATS = re.compile(r"(.)\1+", re.DOTALL)
REPEATS_OR_SINGLE = re.compile(r"(.)\1*", re.DOTALL)
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
        return SEP
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
            out.append(SEP)
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
            table[cp] = SEP
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
        letters = value.replace(SEP, "")
        if len(value) == 1:
            lut[cp] = ord(value)
        elif not letters:
            lut[cp] = ord(SEP)
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


def fold_codes(text: str) -> tuple[Any, Any | None]:
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
        sub[np.isin(sub, _SYMBOLS)] = ord(SEP)  # symbols that were not letters
        codes[at] = sub
    return codes, source


def kept(codes: Any) -> Any:
    """Mask of the characters that survive: no separators, one of each run of repeats."""
    keep = codes != ord(SEP)
    keep[1:] &= codes[1:] != codes[:-1]
    return keep


def decode(codes: Any) -> str:
    """The text spelled by ``codes``, an array of UTF-32 code points."""
    return codes.tobytes().decode("utf-32-le", "surrogatepass")


def fold_text(text: str) -> str:
    """``text`` folded character by character (separators become spaces, runs kept)."""
    return decode(fold_codes(text)[0])


def squash(folded: str) -> str:
    """Collapse runs of one character (not across separators), then drop the separators."""
    return REPEATS.sub(r"\1", folded).replace(SEP, "")


def normalize(text: str) -> tuple[str, list[int]]:
    """Normalise ``text`` for matching and map each output char to its source offset.

    Returns:
        The normalised string and, for each of its characters, the index in ``text``.
    """
    import numpy as np

    codes, source = fold_codes(text)
    keep = kept(codes)
    positions = np.flatnonzero(keep)
    if source is not None:
        positions = source[positions]
    return decode(codes[keep]), positions.tolist()


def is_word_char(ch: str) -> bool:
    """A character that continues an ASCII word (letters, digits, apostrophe, styled forms)."""
    folded = fold_table().get(ord(ch), ch)
    return ch in "'’" or (len(folded) == 1 and folded.isascii() and folded.isalnum())


def splits_words(ch: str) -> bool:
    """A visible separator between words (zero-width and combining marks are not)."""
    if ch in _ZERO_WIDTH or unicodedata.category(ch) in ("Mn", "Me"):
        return False
    return fold_table().get(ord(ch), ch) == SEP
