"""Lexical support: how much of an English question's information a passage's words carry.

A bi-encoder's cosine says a passage is about the same thing as the question, not that it
holds what the question asks: a short question against a long passage can score low although
the passage holds every word that matters ("Will your staff ever ask for my password?" against
a payment-security paragraph that says "our staff will never ask you for your password": cosine
0.22), and a question the knowledge base does not cover can score high because it names the
shop. :class:`TermStatistics` measures the other side of the evidence, which the relevance gate
(:meth:`knowledge.retrieval.KnowledgeBase.relevance`) adds to the cosines: the share of the
question's content words, weighted by their inverse document frequency in the knowledge base,
that occur in the passage. Words the whole knowledge base uses
(the shop's name) weigh little; words it never uses ("CEO") weigh most, so a question about
something the knowledge base does not cover keeps a low support even when it names the shop.

Words are lower-cased, contractions expanded, spaCy's English stop words removed and suffixes
stripped by a few rules (plural, -ed, -ing, final e: "arrives", "arrived", "arrive" → "arriv"),
without a dictionary. Chinese questions are gated by character overlap instead
(:func:`knowledge.retrieval.zh_overlap`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from components.text import en_stop_words

_WORD = re.compile(r"[a-z0-9]+")
_CONTRACTIONS = (
    (re.compile(r"\bcan['’]t\b"), "can not"),
    (re.compile(r"\bwon['’]t\b"), "will not"),
    (re.compile(r"n['’]t\b"), " not"),
    (re.compile(r"['’](s|re|ve|ll|d|m)\b"), ""),
)
_SUFFIXES = (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""))
_VOWELS = set("aeiou")


def _doubled(word: str) -> bool:
    return word[-1] == word[-2] and word[-1] not in _VOWELS and word[-1] != "s"


@lru_cache(maxsize=50000)
def stem(word: str) -> str:
    """Strip one suffix, a doubled final consonant and a final e.

    For example ``shipping`` → ``ship``, ``cancelled`` and ``cancel`` → ``cancel``,
    ``stores`` → ``stor``.
    """
    if len(word) <= 3:
        return word
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                break
            word = word[: -len(suffix)] + replacement
            if suffix in ("ing", "ed") and _doubled(word) and word[-1] not in "lz":
                word = word[:-1]  # shipping → shipp → ship (but calling → call)
            break
    if len(word) > 5 and _doubled(word):
        word = word[:-1]  # cancelled → cancell → cancel, install → instal
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def words(text: str) -> list[tuple[str, str]]:
    """``(word, stem)`` of each content word of English ``text``.

    The text is lower-cased, contractions are expanded and stop words are dropped (before and
    after stemming: ``whats`` → ``what``).
    """
    text = text.lower()
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    stops = en_stop_words()
    pairs = ((w, stem(w)) for w in _WORD.findall(text) if len(w) > 1 and w not in stops)
    return [(w, s) for w, s in pairs if s not in stops]


def terms(text: str) -> set[str]:
    """Stemmed content words of English ``text``."""
    return {s for _, s in words(text)}


def encoder_vocabulary(folder: str | Path) -> frozenset[str] | None:
    """The whole words of a WordPiece encoder (``vocab.txt``), or None when it has none."""
    path = Path(folder) / "vocab.txt"
    if not path.is_file():
        return None
    return frozenset(w for w in path.read_text(encoding="utf-8").split() if w.isalnum())


class TermStatistics:
    """Document frequencies of the knowledge base's words, for :meth:`support`.

    Args:
        passages: The text of every passage (heading included) in the knowledge base.
        vocabulary: Words the encoder knows whole (:func:`encoder_vocabulary`). A question
            word that neither the knowledge base nor the encoder knows is most likely a typo or
            slang ("refnuds", "pls") and is left out of the support, instead of weighing the
            most; None counts every word.
    """

    def __init__(self, passages: Iterable[str], vocabulary: frozenset[str] | None = None) -> None:
        self.document_frequency: Counter[str] = Counter()
        self.passages = 0
        self.vocabulary = vocabulary
        for text in passages:
            self.document_frequency.update(terms(text))
            self.passages += 1

    def idf(self, term: str) -> float:
        """Inverse document frequency; a word no passage uses gets the highest."""
        return math.log((self.passages + 1) / (self.document_frequency.get(term, 0) + 0.5))

    def support(self, question: str, passage: str) -> float:
        """IDF-weighted share of the question's content words that occur in the passage.

        Returns 0 when the question has no content words.
        """
        wanted = {
            s
            for w, s in words(question)
            if self.vocabulary is None or w in self.vocabulary or s in self.document_frequency
        }
        if not wanted:
            return 0.0
        found = terms(passage)
        weights = {t: self.idf(t) for t in wanted}
        total = sum(weights.values())
        return sum(w for t, w in weights.items() if t in found) / total if total > 0 else 0.0
