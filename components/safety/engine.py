"""The guard engine: sensitive-word matching shared by every path that carries text.

One engine serves the NLU guard component (user input), the NLG (rephrased output), the
knowledge answers and the action server (free text from actions); the process's services
object (:mod:`components.services`) builds it once from the ``guard`` settings. Matching runs on
a normalised copy of the text (:mod:`components.safety.normalize`) so that evasions still hit,
and every hit is mapped back to character offsets in the *original* text, so masking never
shifts the rest of the message. Chinese terms are also matched by their full pinyin
(``shabi``, ``sha bi``). Matching is one Aho-Corasick automaton (ahocorasick-rs) over every term
variant, so the cost does not grow with the lexicon; the offset map is only built for texts
that have a candidate hit. English (ASCII) terms must cover whole words of the original text;
an allow-list of phrases (:mod:`components.safety.lexicon`) suppresses hits inside them.
"""

from __future__ import annotations

import copy
import functools
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.errors import ConfigError
from components.safety.lexicon import (
    ACTIONS,
    DEFAULT_ALLOW,
    DEFAULT_LEXICONS,
    LexiconEntry,
    load_allow_list,
    load_lexicon,
)
from components.safety.normalize import (
    REPEATS_OR_SINGLE,
    SEP,
    decode,
    fold_codes,
    fold_text,
    is_word_char,
    kept,
    splits_words,
    squash,
)
from components.text import has_cjk

if TYPE_CHECKING:
    from components.safety.offensive import OffensiveClassifier

MASK = "***"
#: Category of the hit the offensive-content classifier adds.
OFFENSIVE = "offensive"
_BARRIER = "\uffff"  # a noncharacter: survives normalisation, in no term (see scan_many)


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
    """Everything the guard found in one text.

    Attributes:
        hits: Lexicon hits, and an ``offensive`` hit over the whole text when the classifier's
            score reaches its threshold.
        offensive_score: The offensive-content classifier's probability (None: no classifier,
            or a text it does not score).
    """

    hits: list[GuardHit] = field(default_factory=list)
    offensive_score: float | None = None

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
            "offensive_score": (
                None if self.offensive_score is None else round(self.offensive_score, 4)
            ),
        }


@dataclass(frozen=True)
class _Key:
    entry: int  # index into the engine's entries
    ref: str  # the term as written, folded, without separators (runs not collapsed)
    pinyin: bool  # matched through the term's pinyin
    ascii: bool  # an English-like key: must cover whole words of the original text


def _runs(text: str) -> list[tuple[str, int]]:
    return [(m.group(1), len(m.group(0))) for m in REPEATS_OR_SINGLE.finditer(text)]


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
        # the learned classifier beside the lexicons (see with_classifier)
        self.classifier: OffensiveClassifier | None = None
        self.offensive_action = "flag"
        self.offensive_threshold = 1.0
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
        spelled_out = fold_text(term)
        ref = spelled_out.replace(SEP, "")
        out = {(squash(spelled_out), ref, False), (ref, ref, False)}
        if pinyin and has_cjk(term):
            from pypinyin import lazy_pinyin

            spelled = "".join(lazy_pinyin(ref))
            if spelled.isascii() and spelled.isalpha() and len(spelled) >= min_letters:
                out |= {(squash(spelled), spelled, True), (spelled, spelled, True)}
        return [v for v in out if v[0]]

    @classmethod
    def from_files(
        cls,
        lexicons: Sequence[str | Path] = (),
        allow: Iterable[str] = (),
        allow_files: Sequence[str | Path] | None = None,
        **kwargs: Any,
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

    def with_classifier(
        self,
        classifier: OffensiveClassifier | None,
        offensive_action: str = "flag",
        offensive_threshold: float | None = None,
    ) -> GuardEngine:
        """This engine (same lexicons, shared) with an offensive-content classifier beside it.

        Args:
            classifier: The classifier (None: lexicons only; returns ``self``).
            offensive_action: Action of the ``offensive`` hit (``flag``, ``mask``, ``block``).
            offensive_threshold: Decision threshold; None keeps the classifier's own.

        Raises:
            ConfigError: for an unknown action or a threshold outside [0, 1].
        """
        if offensive_action not in ACTIONS:
            raise ConfigError(
                "offensive_action", offensive_action, f"one of {ACTIONS}", component="guard"
            )
        if offensive_threshold is not None and not 0.0 <= offensive_threshold <= 1.0:
            raise ConfigError(
                "offensive_threshold", offensive_threshold, "a number in [0, 1]", component="guard"
            )
        if classifier is None:
            return self
        engine = copy.copy(self)
        engine.classifier = classifier
        engine.offensive_action = offensive_action
        engine.offensive_threshold = (
            classifier.threshold if offensive_threshold is None else offensive_threshold
        )
        return engine

    def scan_many(self, texts: Sequence[str]) -> list[GuardResult]:
        """Scan a batch of texts in one pass (much faster for many short messages).

        The texts are joined with a character that survives normalisation and is in no term,
        so no match can span two texts; hits are split back with offsets into each text. With a
        classifier (:meth:`with_classifier`), each text it scores gets its score, and an
        ``offensive`` hit over the whole text at or above the threshold.
        """
        results = self._scan_lexicons(texts)
        if self.classifier is not None:
            self._classify(texts, results)
        return results

    def _classify(self, texts: Sequence[str], results: list[GuardResult]) -> None:
        """Add the classifier's score and ``offensive`` hits to ``results``."""
        scores = self.classifier.scores(texts)
        for text, result, score in zip(texts, results, scores, strict=True):
            result.offensive_score = score
            if score is not None and score >= self.offensive_threshold:
                result.hits.append(GuardHit("", OFFENSIVE, 1, self.offensive_action, 0, len(text)))

    def _scan_lexicons(self, texts: Sequence[str]) -> list[GuardResult]:
        """The lexicon part of :meth:`scan_many`."""
        texts = list(texts)
        joined = _BARRIER.join(texts)
        if joined.count(_BARRIER) != max(len(texts) - 1, 0):
            return [self._scan_one(t) for t in texts]  # a text contains the barrier itself
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
        """Find every lexicon term in ``text`` (offsets refer to ``text``), and classify it."""
        result = self._scan_one(text)
        if self.classifier is not None:
            self._classify([text], [result])
        return result

    def _scan_one(self, text: str) -> GuardResult:
        """The lexicon hits of one text."""
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
        codes, source = fold_codes(text)
        keep = kept(codes)
        norm = decode(codes[keep])
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
                letters = decode(piece[piece != ord(SEP)])
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
        if (start > 0 and is_word_char(text[start - 1])) or (
            end < len(text) and is_word_char(text[end])
        ):
            return False
        if pinyin:
            return True
        pieces, size = [], 1
        for prev, cur in pairwise(positions):
            gap = text[prev + 1 : cur]
            if any(splits_words(c) for c in gap):
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
