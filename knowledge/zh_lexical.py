"""Chinese lexical matching: jieba words plus characters, for BM25 ranking and the relevance gate.

Chinese has no spaces, and one character alone says little ("退" is in returns, refunds and
"退回"), while a segmenter alone misses words it cuts differently in the question and the
passage ("保修期" vs "保修"). So a Chinese text's terms are both: jieba's search-mode words
(every dictionary word inside a longer one too: "保修期" gives "保修" and "保修期") and each
content character. Function words and characters ("的", "吗", "请问", "怎么") are dropped;
Latin words ("paypal", "usb") are kept lower-cased; full-width forms and traditional characters
are folded (NFKC, OpenCC).

:class:`ChineseBM25` ranks passages by Okapi BM25 over these terms (a Haystack ``@component``
with the same output as Haystack's BM25 retriever); :class:`ChineseTermStatistics` gives the
IDF-weighted share of a question's terms a passage holds, which the knowledge base's relevance
gate uses for Chinese questions (words weigh more than single characters). Engines only: no
``rasa`` here; jieba is imported on first use (it builds its dictionary then, ~1 s).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

from haystack import Document, component

from components.text import CJK, ZH_FUNCTION_CHARS, fold_for_model

#: Function words and question frames that say nothing about what is asked.
ZH_STOP_WORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 哦 嘛 么 嗎 我 你 您 他 她 它 们 我们 你们 是 在 有 和 与 及 或 "
    "怎么 怎么办 怎样 怎么样 如何 什么 为什么 哪 哪里 哪儿 那 这 这个 那个 个 一 不 也 就 都 "
    "要 会 能 可以 可不可以 能不能 是不是 有没有 请问 请 亲 咋 啥 一下 如果 还 还是 多少 "
    "多久 几 没有 一般 大概 现在 已经 想 想要 需要 吗 吧 呗 哈 嗯 哎 谢谢 你好 您好".split()
)
#: Weight of a single character relative to a word in the gate's support.
CHAR_WEIGHT = 0.5
#: Weight of the earlier question's terms when a follow-up is ranked with it.
CONTEXT_WEIGHT = 0.5

_LATIN = re.compile(r"[a-z][a-z0-9+.-]*[a-z0-9]|[a-z]{2,}")
_lock = threading.Lock()
_jieba = None


def _segmenter():  # noqa: ANN202 - jieba has no types
    """jieba, imported and initialised once per process (thread-safe)."""
    global _jieba
    if _jieba is None:
        with _lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def zh_terms(text: str) -> list[str]:
    """The terms of a Chinese (or mixed) text: jieba words, content characters, Latin words.

    Words are 2+ characters with at least one CJK ideograph; repeated terms are kept (BM25
    counts them).
    """
    text = unicodedata.normalize("NFKC", fold_for_model(text or "")).lower()
    terms: list[str] = []
    for word in _segmenter().lcut_for_search(text):
        word = word.strip()
        if len(word) < 2 or word in ZH_STOP_WORDS:
            continue
        if CJK.search(word):
            terms.append(word)
        elif _LATIN.fullmatch(word):
            terms.append(word)
    terms.extend(c for c in CJK.findall(text) if c not in ZH_FUNCTION_CHARS)
    return terms


class ChineseTermStatistics:
    """Document frequencies of the Chinese passages' terms, for :meth:`support`.

    Args:
        passages: The text of every Chinese passage (heading included).
    """

    def __init__(self, passages: Iterable[str]) -> None:
        self.document_frequency: Counter[str] = Counter()
        # each passage is segmented once, here, not again for every question the gate scores
        self._passage_terms: dict[str, frozenset[str]] = {}
        self.passages = 0
        for text in passages:
            if text not in self._passage_terms:
                self._passage_terms[text] = frozenset(zh_terms(text))
            self.document_frequency.update(self._passage_terms[text])
            self.passages += 1

    def idf(self, term: str) -> float:
        """Inverse document frequency; a term no passage uses gets the highest."""
        return math.log((self.passages + 1) / (self.document_frequency.get(term, 0) + 0.5))

    def support(self, question: str, passage: str) -> float:
        """IDF-weighted share of the question's terms found in the passage (0 without terms).

        Words weigh fully, single characters :data:`CHAR_WEIGHT`.
        """
        wanted = set(zh_terms(question))
        if not wanted:
            return 0.0
        found = self._passage_terms.get(passage)
        if found is None:
            found = frozenset(zh_terms(passage))
        weights = {t: self.idf(t) * (1.0 if len(t) > 1 else CHAR_WEIGHT) for t in wanted}
        total = sum(weights.values())
        return sum(w for t, w in weights.items() if t in found) / total if total > 0 else 0.0


@component
class ChineseBM25:
    """Okapi BM25 over :func:`zh_terms` of a fixed set of passages.

    Args:
        documents: The passages to rank (their ``content`` is searched).
        top_k: Documents returned.
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
    """

    def __init__(
        self, documents: list[Document], top_k: int = 10, k1: float = 1.2, b: float = 0.75
    ) -> None:
        self.documents = list(documents)
        self.top_k = top_k
        self.k1 = k1
        self.b = b
        self._terms: list[Counter[str]] | None = None

    def warm_up(self) -> None:
        """Segment every passage once."""
        if self._terms is not None:
            return
        self._terms = [Counter(zh_terms(d.content or "")) for d in self.documents]
        self._lengths = [sum(t.values()) for t in self._terms]
        self._average = sum(self._lengths) / (len(self._lengths) or 1) or 1.0
        self._df: Counter[str] = Counter()
        for counts in self._terms:
            self._df.update(counts.keys())

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int | None = None, emphasis: str | None = None) -> dict:
        """The ``top_k`` best passages for ``query`` (``score`` = BM25; no match: left out).

        ``emphasis``: the part of ``query`` that matters most (a follow-up such as "那退款呢"
        joined to the question it follows); the query's other terms count
        :data:`CONTEXT_WEIGHT` as much, so the follow-up's new topic outweighs the old one.
        """
        self.warm_up()
        weights = dict.fromkeys(zh_terms(query), 1.0)
        if emphasis:
            stressed = set(zh_terms(emphasis))
            weights = {t: 1.0 if t in stressed else CONTEXT_WEIGHT for t in weights}
        n = len(self._terms)
        scored = []
        for index, counts in enumerate(self._terms):
            score = 0.0
            for term, weight in weights.items():
                tf = counts.get(term, 0)
                if tf:
                    idf = math.log(1 + (n - self._df[term] + 0.5) / (self._df[term] + 0.5))
                    norm = self.k1 * (1 - self.b + self.b * self._lengths[index] / self._average)
                    score += weight * idf * tf * (self.k1 + 1) / (tf + norm)
            if score > 0:
                scored.append((score, index))
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        return {
            "documents": [
                replace(self.documents[i], score=s) for s, i in scored[: top_k or self.top_k]
            ]
        }
