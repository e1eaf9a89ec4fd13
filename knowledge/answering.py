"""Compose the reply from retrieved passages: grounded LLM answer, or extractive fallback.

:class:`AnswerComposer` numbers the passages, asks the LLM to answer from them only and to cite
them as ``[1]``, then checks the result before it may be used:

* at least one citation, and every cited number names a passage;
* every sentence is supported: most of its content words occur in the cited passages;
* every number in the answer occurs in the cited passages; the guard finds nothing.

When the LLM is off, slow, failing or ungrounded, the reply is extractive: the passage sentences
that share the most content words with the question, in their original order.

When the LLM's whole reply is "I don't know." (as the prompt asks when the passages do not
answer), the answer is ``declined``: the retrieval gate judged the passages relevant by
similarity, but a model that reads them disagrees, and refusing (with the offer of a human) is
the safe side. This is what a capable LLM can add for questions that sound like the knowledge
base without being covered by it ("Who founded Demo Shop?"), which a bi-encoder cannot tell
apart; the bundled 135M model does not (benchmarks/README.md).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from components.errors import KefuError
from components.safety.engine import default_engine
from components.safety.injection import screen
from components.text import CJK_CLASS, EN_FUNCTION_WORDS, sentences

if TYPE_CHECKING:
    from components.llm.client import LLMClient
    from components.safety.engine import GuardEngine

logger = logging.getLogger(__name__)

_WORD = re.compile(f"[a-z0-9]+|[{CJK_CLASS}]", re.IGNORECASE)
_CITATION = re.compile(r"\[(\d+)\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# the whole reply is one "I don't know" sentence (the prompt asks for exactly that); a reply
# that answers and mentions not knowing something else is checked like any other answer
_DECLINE = re.compile(
    r"^\W*(sorry,?\s*)?i\s+(do\s+not|don['’]t)\s+know\b[^.!?\n]*[.!?]?\W*$"
    r"|^\W*(抱歉，?)?我?不知道[^。！？\n]*[。！？]?\W*$",
    re.IGNORECASE,
)
_FOLLOW_UP = re.compile(
    r"^\s*(and|also|what about|how about|same for|what if|and if|but)\b|^\s*(那|还有|那么|如果是?)"
    # a short Chinese question ending in 呢 ("手表呢？", "国际的呢") asks the same of another
    f"|^\\s*[{CJK_CLASS}A-Za-z0-9]{{1,8}}的?呢\\s*[？?]?\\s*$",
    re.IGNORECASE,
)


def is_decline(text: str) -> bool:
    """Whether a reply is just "I don't know." (or 我不知道): the passages do not answer."""
    return bool(_DECLINE.match(text.strip()))


def content_words(text: str) -> set[str]:
    """Lower-cased words (single characters for Chinese) minus function words."""
    return {w for w in (m.lower() for m in _WORD.findall(text)) if w not in EN_FUNCTION_WORDS}


def is_follow_up(question: str) -> bool:
    """'and for electronics?', 'what about Canada?', '那退货呢', '手表呢': needs the last one."""
    return bool(_FOLLOW_UP.search(question)) and len(question.split()) <= 8


def rewrite_follow_up(question: str, previous: str | None) -> str:
    """Make a follow-up self-contained by prefixing the previous question (retrieval only)."""
    if previous and is_follow_up(question):
        return f"{previous.strip()} {question.strip()}"
    return question


GROUNDED_SYSTEM_PROMPT = (
    "Answer the customer's question using only the numbered passages. "
    "Cite the passages you used like [1]. "
    "If they do not answer it, reply only: I don't know."
)


_PASSAGE_NUMBER = re.compile(r"(?m)^\[\d+\] ")


def grounded_messages(question: str, passages: list[str]) -> list[dict[str, str]]:
    """The chat prompt of a grounded answer (the composer's, and the fine-tuning data's).

    Args:
        question: The customer's question.
        passages: The passages shown, numbered from 1 in this order.
    """
    numbered = "\n".join(f"[{i}] {p}" for i, p in enumerate(passages, start=1))
    return [
        {"role": "system", "content": GROUNDED_SYSTEM_PROMPT},
        {"role": "user", "content": f"Passages:\n{numbered}\n\nQuestion: {question}"},
    ]


def passages_of(messages: list[dict[str, str]]) -> list[str]:
    """The passages a chat from :func:`grounded_messages` shows, in order (its inverse)."""
    user = next(m["content"] for m in messages if m["role"] == "user")
    body = user.split("Passages:\n", 1)[-1].rsplit("\n\nQuestion:", 1)[0]
    return [p.strip() for p in _PASSAGE_NUMBER.split(body) if p.strip()]


@dataclass
class ComposedAnswer:
    """What the assistant says, and how it was made."""

    text: str
    citations: list[int] = field(default_factory=list)  # 1-based passage numbers
    mode: str = "extractive"  # extractive | llm | declined (LLM: the passages do not answer)
    reason: str = ""  # why the LLM answer was not used (empty when it was)


class AnswerComposer:
    """Turns passages into a reply.

    Args:
        llm: LLM client configuration (see ``components.llm.create_client``); None = extractive
            only. Its ``timeout`` is this composer's deadline per answer (default: the client's).
        client: The loaded client for ``llm`` (shared through :mod:`components.services`);
            None builds one on first use.
        guard: The guard engine that checks LLM answers (default: the shipped lexicons; the
            services object passes the configured one).
        max_passages: Passages shown to the LLM.
        max_sentences: Sentences in an extractive reply.
        min_support: Share of a sentence's content words that must occur in its cited passages.
    """

    def __init__(
        self,
        llm: dict | None = None,
        client: LLMClient | None = None,
        guard: GuardEngine | None = None,
        max_passages: int = 3,
        max_sentences: int = 2,
        min_support: float = 0.7,
    ) -> None:
        self.llm = llm
        timeout = (llm or {}).get("timeout")
        self.timeout_s = float(timeout) if timeout is not None else None  # None: the client's
        self.max_passages = max_passages
        self.max_sentences = max_sentences
        self.min_support = min_support
        self._client = client
        self._guard = guard

    def extractive(self, question: str, passages: list[str]) -> ComposedAnswer:
        """The sentences of the best passage that best match the question, in order."""
        if not passages:
            return ComposedAnswer(text="")
        wanted = content_words(question)
        candidates = sentences(passages[0]) or [passages[0]]
        ranked = sorted(
            range(len(candidates)),
            key=lambda i: (-len(wanted & content_words(candidates[i])), i),
        )
        keep = sorted(ranked[: self.max_sentences])
        return ComposedAnswer(text=" ".join(candidates[i] for i in keep), citations=[1])

    def check(self, answer: str, passages: list[str]) -> tuple[list[int], str]:
        """Citations of a grounded answer, or a reason it is not grounded."""
        cited = sorted({int(n) for n in _CITATION.findall(answer)})
        if not cited:
            return [], "no_citation"
        if any(n < 1 or n > len(passages) for n in cited):
            return [], "bad_citation"
        evidence = " ".join(passages[n - 1] for n in cited)
        evidence_words = content_words(evidence)
        for sentence in sentences(_CITATION.sub("", answer)):
            words = content_words(sentence)
            if words and len(words & evidence_words) / len(words) < self.min_support:
                return [], "unsupported_sentence"
        if set(_NUMBER.findall(_CITATION.sub("", answer))) - set(_NUMBER.findall(evidence)):
            return [], "new_number"
        if (self._guard or default_engine()).scan(answer).hits:
            return [], "guard"
        return cited, ""

    def _llm_client(self) -> LLMClient:
        if self._client is None:
            from components.llm import create_client

            self._client = create_client(self.llm)
        return self._client

    def grounded(self, question: str, passages: list[str]) -> ComposedAnswer:
        """Ask the LLM; returns the checked answer or the extractive one with the reason."""
        shown = passages[: self.max_passages]
        if any(screen(text).flagged for text in [question, *shown]):
            return self._fallback(question, shown, "injection")  # never sent to the LLM
        messages = grounded_messages(question, shown)
        try:
            generation = self._llm_client().generate(
                messages, timeout_s=self.timeout_s, max_new_tokens=80
            )
        except KefuError as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else "llm_error"
            return self._fallback(question, shown, reason)
        text = generation.text.strip()
        if is_decline(text):
            logger.info("knowledge.llm_declined")
            return ComposedAnswer(text="", citations=[], mode="declined", reason="llm_declined")
        cited, reason = self.check(text, shown)
        if reason:
            return self._fallback(question, shown, reason)
        return ComposedAnswer(text=text, citations=cited, mode="llm")

    def _fallback(self, question: str, passages: list[str], reason: str) -> ComposedAnswer:
        logger.info("knowledge.extractive_fallback reason=%s", reason)
        answer = self.extractive(question, passages)
        answer.reason = reason
        return answer

    def compose(self, question: str, passages: list[str]) -> ComposedAnswer:
        """Grounded LLM answer when an LLM is configured, else extractive."""
        if not passages:
            return ComposedAnswer(text="", reason="no_passages")
        if self.llm is None:
            return self.extractive(question, passages)
        return self.grounded(question, passages)
