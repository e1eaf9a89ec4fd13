"""Query the knowledge index: BM25 + dense retrieval, fused, then reranked by best sentence.

The two retrievals are fused by :class:`HybridRanker`, then each candidate is reranked by its
best sentence (:class:`SentenceReranker`).

:class:`KnowledgeBase` is what the action server uses (through :mod:`components.services`). It
loads the persisted store and its Haystack components once (:meth:`KnowledgeBase.warm_up`), runs
them in order per question and returns the best passage with its sources, or ``found=False`` when
nothing is relevant enough. It calls the components directly rather than through a Haystack
``Pipeline``: ``Pipeline.run`` deep-copies every document (embedding included) between
components, which cost ~20 ms per query here; the components and their order are the same.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypedDict

from haystack import Document
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever

from components.errors import KnowledgeBaseError
from components.text import CJK, ZH_FUNCTION_CHARS, customer_language
from knowledge.encoders import ChineseCalibration, chinese_calibration, prefixes_for
from knowledge.fusion import HybridRanker
from knowledge.lexical import TermStatistics, encoder_vocabulary
from knowledge.rerank import SentenceReranker
from knowledge.stores import KnowledgeStore, new_memory_store
from knowledge.zh_lexical import ChineseBM25, ChineseTermStatistics

if TYPE_CHECKING:
    from components.settings import KnowledgeSettings

logger = logging.getLogger(__name__)

# indexes up to this many passages get their sentence embeddings computed at warm-up
PRIME_LIMIT = 5000


class Passage(TypedDict):
    """One relevant passage handed from retrieval to answering and citing."""

    text: str
    source: str
    title: str
    section: str


@dataclass(frozen=True)
class _Stages:
    """The warmed-up Haystack components, in the order a question runs through them."""

    embedder: Any
    dense: Any
    bm25: InMemoryBM25Retriever
    ranker: HybridRanker
    rerank: SentenceReranker
    cross: Any | None
    # Chinese passages: jieba words + characters BM25 and its ranker (None: no Chinese passages)
    zh_bm25: ChineseBM25 | None = None
    zh_ranker: HybridRanker | None = None
    # the Chinese encoder's query embedder (None: Chinese questions use ``embedder``)
    zh_embedder: Any | None = None
    # how that encoder's cosines are weighed (knowledge.encoders; None: no Chinese encoder)
    zh_calibration: ChineseCalibration | None = None


@dataclass
class Answer:
    """The knowledge base's reply to one question."""

    found: bool
    text: str = ""
    source: str = ""
    title: str = ""
    section: str = ""
    # gate score (KnowledgeBase.gate_scores) of the quoted passage, or of the best candidate
    score: float = 0.0
    # the relevant passages, best first
    passages: list[Passage] = field(default_factory=list)

    @property
    def sources(self) -> list[dict]:
        """Distinct ``{"source", "title"}`` of the passages, best first."""
        seen: list[dict] = []
        for passage in self.passages:
            entry = {"source": passage["source"], "title": passage["title"]}
            if entry not in seen:
                seen.append(entry)
        return seen


def zh_overlap(question: str, passage: str) -> float:
    """Share of the question's content characters (CJK, minus function words) in the passage."""
    chars = {c for c in CJK.findall(question) if c not in ZH_FUNCTION_CHARS}
    if not chars:
        return 0.0
    return sum(1 for c in chars if c in passage) / len(chars)


class KnowledgeBase:
    """Hybrid retrieval over the persisted knowledge index.

    The question's language is resolved once per question, at the entry point it comes through
    (:meth:`answer`, :meth:`retrieve`, :meth:`candidates`, :meth:`relevant`, ...): the
    ``language`` the caller passes (the action passes the customer's), or else the question's
    own (:func:`~components.text.customer_language`); every later step takes it from there.

    Args:
        settings: The validated knowledge settings (the values and their meaning:
            :class:`~components.settings.KnowledgeSettings`). The gate's values (``min_*``,
            ``sentence_share``, ``support_weight``, ``gate_top_k``, ``zh_dense_share``) are read
            per question, so ``kb.settings = dataclasses.replace(kb.settings, min_relevance=x)``
            changes the gate of a warmed-up knowledge base; the others are read at
            :meth:`warm_up`.
        store: Where the index lives (see :mod:`knowledge.stores`).
        encoder: Sentence-transformers model folder; the one the index was built with
            (default: the bundled MiniLM).
    """

    def __init__(
        self,
        settings: KnowledgeSettings,
        store: KnowledgeStore,
        *,
        encoder: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.encoder = encoder
        self._stages: _Stages | None = None
        self._terms: TermStatistics | None = None
        self._zh_terms: ChineseTermStatistics | None = None
        self._languages: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the store and the encoder (idempotent, thread-safe).

        Raises:
            KnowledgeBaseError: when the index has not been built or cannot be read.
        """
        if self._stages is not None:
            return
        with self._lock:
            if self._stages is not None:
                return
            from haystack_integrations.components.embedders.sentence_transformers import (
                SentenceTransformersTextEmbedder,
            )

            from components.model_prep import minilm_path

            if not self.store.exists():
                raise KnowledgeBaseError(
                    "knowledge index has not been built",
                    hint="run `python -m knowledge build`",
                    **self.store.describe(),
                )
            config = self.settings
            store = self.store.open()
            encoder = self.encoder or str(minilm_path())
            keywords = self.store.keyword_store(store)  # in memory: every passage's text
            passages = keywords.filter_documents()
            chinese = [d for d in passages if d.meta.get("lang") == "zh"]
            # the other languages' BM25, term statistics and sentence reranker leave the Chinese
            # passages out (they have their own): adding Chinese documents changes no English
            # answer
            others = [d for d in passages if d.meta.get("lang") != "zh"]
            if chinese and others:
                keywords = new_memory_store()
                keywords.write_documents(others)
            cross = None
            if config.cross_encoder:
                from haystack_integrations.components.rankers.sentence_transformers import (
                    SentenceTransformersSimilarityRanker,
                )

                cross = SentenceTransformersSimilarityRanker(
                    model=config.cross_encoder, top_k=config.top_k, token=None
                )
            stages = _Stages(
                embedder=SentenceTransformersTextEmbedder(
                    model=encoder,
                    local_files_only=True,
                    normalize_embeddings=True,
                    progress_bar=False,
                    prefix=prefixes_for(encoder).query,  # "" for MiniLM
                ),
                dense=self.store.dense_retriever(store, config.top_k),
                bm25=InMemoryBM25Retriever(keywords, top_k=config.top_k),
                ranker=HybridRanker(**{"top_k": config.top_k, **config.fusion}),
                rerank=SentenceReranker(
                    model=encoder, weight=config.rerank_weight, top_k=config.top_k
                ),
                cross=cross,
            )
            for component in (
                stages.embedder,
                stages.dense,
                stages.ranker,
                stages.rerank,
                stages.cross,
            ):
                if hasattr(component, "warm_up"):
                    component.warm_up()
            self._languages = frozenset(str(d.meta.get("lang")) for d in passages)
            if chinese:
                zh_bm25 = ChineseBM25(chinese, top_k=config.top_k)
                zh_bm25.warm_up()
                zh_embedder = self._zh_embedder()
                # Chinese questions over Chinese passages: without a Chinese encoder the cosines
                # are noise and BM25 alone ranks; with one, passages take the encoder's weights
                # (knowledge.encoders: e5 0.5 min-max-scaled cosine + 0.5 BM25, chosen on the
                # shop's Chinese question sets) and FAQ entries, matched question to question,
                # the English FAQ weights
                calibration = (
                    chinese_calibration(zh_embedder.model) if zh_embedder is not None else None
                )
                share = calibration.passage_dense_weight if calibration else 0.0
                english = stages.ranker
                fusion = {
                    "dense_weight": english.dense_weight if calibration else 0.0,
                    "bm25_weight": english.bm25_weight if calibration else 1.0,
                    "passage_dense_weight": share,
                    "passage_bm25_weight": 1 - share,
                    "dense_scale": calibration.dense_scale if calibration else "cosine",
                }
                stages = replace(
                    stages,
                    zh_bm25=zh_bm25,
                    zh_ranker=HybridRanker(**{"top_k": config.top_k, **fusion}),
                    zh_embedder=zh_embedder,
                    zh_calibration=calibration,
                )
                self._zh_terms = ChineseTermStatistics(d.content or "" for d in chinese)
            if config.rerank_weight > 0 and len(others) <= PRIME_LIMIT:
                stages.rerank.prime(others)  # the sentence reranker reads English only
            self._terms = TermStatistics(
                (d.content or "" for d in others), vocabulary=encoder_vocabulary(encoder)
            )
            self._stages = stages
            logger.info(
                "knowledge.loaded store=%s documents=%d", self.store.kind, store.count_documents()
            )

    def _zh_embedder(self) -> Any | None:
        """The Chinese encoder's query embedder, warmed up, or None."""
        from components.model_prep import resolve_zh_encoder

        folder = resolve_zh_encoder(self.settings.zh_encoder)
        if folder is None:
            return None
        from haystack_integrations.components.embedders.sentence_transformers import (
            SentenceTransformersTextEmbedder,
        )

        # e5 wants "query: " before a question (its passages were indexed after "passage: ")
        embedder = SentenceTransformersTextEmbedder(
            model=folder,
            local_files_only=True,
            normalize_embeddings=True,
            progress_bar=False,
            prefix=prefixes_for(folder).query,
        )
        embedder.warm_up()
        return embedder

    # ------------------------------------------------------------------ the question's language
    @staticmethod
    def _language(question: str, language: str | None) -> str | None:
        """``language`` if given, else the question's own: the one detection per question."""
        return language or customer_language(question)

    def _passages_in(self, language: str | None) -> str | None:
        """The language of the passages to answer from (None: all) for a resolved language."""
        return language if language in self._languages else None

    def _chinese_path(self, language: str | None) -> bool:
        """Whether a question in ``language`` (resolved) takes the Chinese path."""
        return (
            self._stages is not None
            and self._stages.zh_bm25 is not None
            and self._passages_in(language) == "zh"
        )

    def passage_language(self, question: str, language: str | None = None) -> str | None:
        """The language of the passages to answer ``question`` from, or None for all.

        ``language`` (the customer's, e.g. the conversation's ``language`` slot) or else the
        question's own (:func:`~components.text.customer_language`); None when the knowledge
        base has no passage in it (a Chinese question is still answered from English documents
        when there are no Chinese ones).
        """
        self.warm_up()
        return self._passages_in(self._language(question, language))

    # ------------------------------------------------------------------ retrieval
    def candidates(
        self, question: str, language: str | None = None, emphasis: str | None = None
    ) -> dict:
        """Query embedding and both retrievers' rankings (``embedding``, ``dense``, ``bm25``).

        With ``language`` (None: the question's own), only passages in that language
        (``meta.lang``) are returned when there are any: each retriever is asked for more and
        the rest are dropped.
        """
        self.warm_up()
        return self._candidates(question, self._language(question, language), emphasis)

    def _candidates(self, question: str, language: str | None, emphasis: str | None) -> dict:
        stages = self._stages
        top_k = self.settings.top_k
        wanted = self._passages_in(language)
        chinese = wanted == "zh" and stages.zh_bm25 is not None
        # a Chinese question is embedded once, by the encoder its passages were embedded with
        zh_embedder = stages.zh_embedder if chinese else None
        embedder = zh_embedder if zh_embedder is not None else stages.embedder
        try:
            embedding = embedder.run(text=question)["embedding"]
            if wanted is None:
                return {
                    "embedding": embedding,
                    "dense": stages.dense.run(query_embedding=embedding)["documents"],
                    "bm25": stages.bm25.run(query=question)["documents"],
                }
            wide = top_k * (len(self._languages) + 1)
            dense = stages.dense.run(query_embedding=embedding, top_k=wide)["documents"]
            if chinese:
                bm25 = stages.zh_bm25.run(query=question, emphasis=emphasis)["documents"]
            else:
                bm25 = stages.bm25.run(query=question, top_k=wide)["documents"]
            return {
                "embedding": embedding,
                "dense": [d for d in dense if d.meta.get("lang") == wanted][:top_k],
                "bm25": [d for d in bm25 if d.meta.get("lang") == wanted][:top_k],
            }
        except Exception as exc:
            raise KnowledgeBaseError(f"retrieval failed: {type(exc).__name__}") from exc

    def retrieve(
        self,
        question: str,
        rerank: bool = True,
        language: str | None = None,
        emphasis: str | None = None,
    ) -> list[Document]:
        """Final ranking, best first; ``rerank=False`` stops after fusion.

        ``language``: the question's language (None: detected); passages in it are preferred
        (see :meth:`passage_language`). The scores are in ``meta``: see :class:`HybridRanker`
        and :class:`SentenceReranker`.
        """
        self.warm_up()
        return self._ranked(question, self._language(question, language), rerank, emphasis)

    def _ranked(
        self, question: str, language: str | None, rerank: bool, emphasis: str | None
    ) -> list[Document]:
        found = self._candidates(question, language, emphasis)
        stages = self._stages
        if self._chinese_path(language):
            # the sentence reranker and the cross-encoder read English only
            return stages.zh_ranker.run(
                found["dense"], found["bm25"], question, found["embedding"]
            )["documents"]
        fused = stages.ranker.run(found["dense"], found["bm25"], question, found["embedding"])
        if not rerank:
            return fused["documents"]
        ranked = stages.rerank.run(fused["documents"], found["embedding"])["documents"]
        if stages.cross is not None and ranked:
            scored = stages.cross.run(query=question, documents=ranked)["documents"]
            ranked = [replace(d, meta={**d.meta, "cross_score": d.score}) for d in scored]
        return ranked

    # ------------------------------------------------------------------ the relevance gate
    def relevance(self, question: str, doc: Document) -> float:
        """How well ``doc`` (a ranked candidate) answers an English ``question``.

        The score is::

            sentence_share * best sentence cosine + (1 - sentence_share) * passage cosine
            + support_weight * lexical support

        The cosines say the passage is about the same thing; the support says it holds the
        words that carry the question (a question about something the knowledge base never
        mentions, "Who is the CEO of Demo Shop?", keeps a low support although it names the
        shop). Without the sentence reranker the passage cosine stands in for the sentence's.
        """
        config = self.settings
        dense = doc.meta.get("dense_score") or 0.0
        sentence = doc.meta.get("sentence_score")
        if sentence is None:
            similarity = dense
        else:
            similarity = config.sentence_share * sentence + (1 - config.sentence_share) * dense
        support = self._terms.support(question, doc.content or "") if self._terms else 0.0
        return similarity + config.support_weight * support

    def gate_scores(
        self, question: str, ranked: list[Document], language: str | None = None
    ) -> list[float]:
        """What the relevance gate compares, for the first ``gate_top_k`` of ``ranked``.

        For a Chinese question answered from Chinese passages, the lexical support of each
        passage (:class:`~knowledge.zh_lexical.ChineseTermStatistics`, against
        ``min_zh_relevance``, see ``zh_dense_share``); for a Chinese question without Chinese
        passages, the share of its content characters found in each passage (against
        ``min_zh_overlap``); for any other, :meth:`relevance` (against ``min_relevance``).
        ``language``: the question's (None: detected).
        """
        self.warm_up()
        return self._gate_scores(question, ranked, self._language(question, language))

    def _gate_scores(
        self, question: str, ranked: list[Document], language: str | None
    ) -> list[float]:
        config = self.settings
        candidates = ranked[: config.gate_top_k]
        if self._chinese_path(language):
            share = self._zh_gate()[0]
            return [
                share * (d.meta.get("dense_score") or 0.0)
                + (1 - share) * self._zh_terms.support(question, d.content or "")
                for d in candidates
            ]
        if language == "zh":
            return [zh_overlap(question, d.content or "") for d in candidates]
        return [self.relevance(question, d) for d in candidates]

    def _zh_gate(self) -> tuple[float, float]:
        """The Chinese gate's cosine share and threshold.

        Without a Chinese encoder: support alone against ``min_zh_support``. With one:
        ``zh_dense_share`` and ``min_zh_relevance``, each (when None) the encoder's own
        calibrated value (:func:`knowledge.encoders.chinese_calibration`): e5 cosines are
        compressed and differ between the tuned and the released model, so a threshold chosen
        for one encoder passes everything, or nearly nothing, with another.
        """
        config = self.settings
        calibration = self._stages.zh_calibration
        if calibration is None:
            return 0.0, config.min_zh_support
        share = config.zh_dense_share
        threshold = config.min_zh_relevance
        return (
            calibration.gate_dense_share if share is None else share,
            calibration.min_relevance if threshold is None else threshold,
        )

    def _threshold(self, language: str | None) -> float:
        config = self.settings
        if self._chinese_path(language):
            return self._zh_gate()[1]
        return config.min_zh_overlap if language == "zh" else config.min_relevance

    def relevant(
        self, question: str, ranked: list[Document], language: str | None = None
    ) -> list[tuple[Document, float]]:
        """The candidates that answer ``question`` well enough to be quoted, with gate scores.

        Only the first ``gate_top_k`` of ``ranked`` are considered; the result is best first.
        ``language``: the question's (None: detected).
        """
        self.warm_up()
        return self._gate(question, ranked, self._language(question, language))[0]

    def _gate(
        self, question: str, ranked: list[Document], language: str | None
    ) -> tuple[list[tuple[Document, float]], float]:
        threshold = self._threshold(language)
        scores = self._gate_scores(question, ranked, language)
        passed = [(d, x) for d, x in zip(ranked, scores, strict=False) if x >= threshold]
        return passed, max(scores, default=0.0)

    # ------------------------------------------------------------------ answering
    def answer(
        self, question: str, language: str | None = None, context: str | None = None
    ) -> Answer:
        """Best relevant passage for ``question`` with its sources, or ``found=False``.

        ``language``: the customer's language, ``zh`` or ``en`` (None: the question's own,
        detected once here); passages in it are preferred (see :meth:`passage_language`) and it
        chooses the relevance gate. ``context``: the earlier question a follow-up ("and for
        watches?", "那退款呢") continues; they are searched together, and for Chinese the
        follow-up's own words weigh more (its new topic wins).
        """
        if not question or not question.strip():
            return Answer(found=False)
        emphasis = question if context else None
        if context:
            question = f"{context.strip()} {question.strip()}"
        self.warm_up()
        language = self._language(question, language)
        ranked = self._ranked(question, language, True, emphasis)
        relevant, best = self._gate(question, ranked, language)
        if not relevant:
            logger.info("knowledge.no_answer gate_score=%.3f", best)
            return Answer(found=False, score=best)
        top, top_score = relevant[0]
        return Answer(
            found=True,
            text=top.meta.get("body", top.content),
            source=top.meta["source"],
            title=top.meta["title"],
            section=top.meta.get("section", ""),
            score=float(top_score),
            passages=[
                Passage(
                    text=d.meta.get("body", d.content),
                    source=d.meta["source"],
                    title=d.meta["title"],
                    section=d.meta.get("section", ""),
                )
                for d, _ in relevant
            ],
        )
