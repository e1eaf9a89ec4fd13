"""Shared text utilities: CJK ranges, language detection, sentence splitting and stop words.

One home for what the NLU, the NLG's fact checks, the guard and the knowledge base all need to
agree on: which characters count as Chinese, what language a text is in, where a sentence ends
and which words say nothing about a question's topic. Engines only: no ``rasa`` here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import cache, lru_cache
from pathlib import Path

#: CJK unified ideographs (extension A + basic block) and compatibility ideographs, as the body
#: of a regex character class.
CJK_CLASS = "\u3400-\u9fff\uf900-\ufaff"
#: One CJK ideograph.
CJK = re.compile(f"[{CJK_CLASS}]")
#: Word tokens for offsets: one token per CJK ideograph, runs of other word characters, and
#: single punctuation marks.
WORD_TOKENS = re.compile(f"[{CJK_CLASS}]|[^\\W{CJK_CLASS}]+|[^\\w\\s]")
#: Sentence ends: ``.``, ``!``, ``?`` before whitespace, and ``。！？；`` (no space needed).
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])")

_LETTER = re.compile(f"[A-Za-z{CJK_CLASS}]")
# e-mail addresses and Latin tokens with digits (order numbers, tracking numbers, models): not
# words of any language
_CODES = re.compile(r"\S+@\S+|[A-Za-z0-9_-]*\d[A-Za-z0-9_-]*")

#: Short English function-word list used where a fixed, small list is wanted (the answer
#: composer's grounding check); the knowledge base's lexical support uses spaCy's longer list
#: (:func:`en_stop_words`). Both live here so that there is one place to look.
EN_FUNCTION_WORDS = frozenset(
    "a an the and or but if of to in on at for with from by is are was were be been do does did "
    "i you we they it my your our their me us this that these those can could will would should "
    "how what when where which who why there here not no yes have has had get got any some as so "
    "than then also just about into over under up down out more most very all each".split()
)
#: Frequent Chinese function characters that say nothing about the topic of a question.
ZH_FUNCTION_CHARS = frozenset(
    "的了吗呢吧啊我你您他她它们是在有和与及或怎么么什哪那这个一不也就都要会能可以请问"
)


def has_cjk(text: str) -> bool:
    """Whether ``text`` contains at least one CJK ideograph."""
    return CJK.search(text) is not None


def language_of(text: str) -> str:
    """The language of ``text``: ``zh``, ``en`` or ``und`` (no letters).

    ``zh`` when at least a third of the letters are CJK ideographs, so mixed text such as
    "KF100234 的物流到哪了" counts as Chinese.
    """
    letters = _LETTER.findall(text)
    if not letters:
        return "und"
    cjk = sum(1 for ch in letters if CJK.match(ch))
    return "zh" if cjk / len(letters) >= 1 / 3 else "en"


#: Languages a customer can be answered in (the demo shop's; a project may add more).
CUSTOMER_LANGUAGES = ("zh", "en")
#: The parse-data property the NLU reports a message's language in, and the slot that keeps it
#: (``components.nlu.language_detector``, the NLG's response conditions, the actions).
LANGUAGE_KEY = "language"


def customer_language(text: str) -> str | None:
    """The language to answer a customer message in: ``zh``, ``en`` or None (cannot tell).

    A customer who writes any Chinese is answered in Chinese: two CJK ideographs, or one that is
    at least a third of the letters, make a message Chinese ("订单KF100234到哪了", "我想问下
    return policy", "hi 你好"). Letters without Chinese make it English. A message without
    words (an order number, a phone number, an e-mail address, a button payload such as
    ``/affirm``; codes with digits such as ``KF100234`` are not words) says
    nothing about the language: None, so the conversation keeps the one it had.
    """
    if text.lstrip().startswith("/"):  # a button payload (an intent), not words
        return None
    letters = _LETTER.findall(_CODES.sub(" ", text))
    if not letters:
        return None
    cjk = sum(1 for ch in letters if CJK.match(ch))
    if cjk >= 2 or (cjk and cjk / len(letters) >= 1 / 3):
        return "zh"
    return "en" if len(letters) - cjk >= 2 else None


@cache
def simplified_characters() -> Mapping[str, str]:
    """Traditional → simplified, one character to one character, for text a model reads.

    Unlike the guard's folding table, a character that is itself a simplified form is never
    changed (OpenCC lists "么" → "幺"; a model must keep reading "什么").
    """
    import opencc

    path = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        src, _, dst = line.partition("\t")
        if len(src) == 1 and dst:
            pairs.append((src, dst.split()[0]))
    simplified = {dst for _, dst in pairs}
    return {src: dst for src, dst in pairs if len(dst) == 1 and src not in simplified}


def fold_for_model(text: str) -> str:
    """Fold full-width forms and traditional characters, keeping every offset.

    Each character becomes its NFKC form (``ＫＦ１００２３４`` → ``KF100234``) and traditional
    Chinese becomes simplified (``訂單`` → ``订单``, OpenCC's character table) only where the
    result is one character, so character offsets in the folded text are those of the original
    (entity spans stay exact). For models whose vocabulary was built from simplified, half-width
    text.
    """
    t2s = simplified_characters()
    out = []
    for ch in text:
        folded = unicodedata.normalize("NFKC", ch) if ord(ch) > 0x7F else ch
        if len(folded) != 1:
            folded = ch
        out.append(t2s.get(folded, folded))
    return "".join(out)


def sentences(text: str) -> list[str]:
    """Split ``text`` into trimmed, non-empty sentences at :data:`SENTENCE_END` (zh and en)."""
    return [s.strip() for s in SENTENCE_END.split(text) if s and s.strip()]


@lru_cache(maxsize=1)
def en_stop_words() -> frozenset[str]:
    """SpaCy's English stop words (imported on first use: spaCy is slow to import)."""
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)
