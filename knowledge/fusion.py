"""Hybrid ranking of dense and BM25 candidates (a Haystack component).

Naive reciprocal rank fusion throws away how *sure* each retriever is (on StackFAQ it drops
below the dense retriever alone), so the default here is a calibrated convex combination:

    score = dense_weight * cosine + bm25_weight * bm25 / max_bm25 (+ faq_boost)

where the cosine is computed for every candidate (BM25-only hits included, from their stored
embeddings). FAQ entries and document passages get their own pair of weights, because the
cosine means different things for them: an FAQ entry is embedded by its question, and
question-to-question cosines are high and sharply peaked (on StackFAQ BM25 adds only a little on
top of MiniLM, so its FAQ weight is 0.05); a passage is embedded with its body, and
question-to-passage cosines are lower and flatter, so the words the question shares with the
passage count for more (weight 0.2; chosen on the shop QA questions in ``benchmarks/data``,
where 0.1 to 0.3 gave the same result, and checked on held-out sets). ``faq_boost`` rewards an
FAQ entry whose question equals the query after normalisation. ``mode="rrf"`` gives weighted
reciprocal rank fusion, for comparison.

``dense_scale="minmax"`` rescales the passages' cosines to [0, 1] over the candidates before they
are weighed (as BM25 is divided by its best score): an encoder whose cosines are compressed
(multilingual-e5 as released: 90 % of the shop's Chinese question–passage cosines lie within
0.81–0.90) otherwise lets BM25 decide the order whatever the weights. ``meta["dense_score"]``
stays the raw cosine (the relevance gate reads it).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

import numpy as np
from haystack import Document, component


def normalize_question(text: str) -> str:
    """Casefolded NFKC text without punctuation or spaces (for exact FAQ matches)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\W_]+", "", text)


@component
class HybridRanker:
    """Fuse dense and BM25 rankings.

    Each output document has ``meta["dense_score"]`` (cosine), ``meta["bm25_score"]``
    (normalised to the best BM25 hit) and ``score`` (the fused score).

    Args:
        mode: ``convex`` (default) or ``rrf``.
        dense_weight: Weight of the cosine similarity for FAQ entries (or of the dense ranks
            for ``rrf``, for every document).
        bm25_weight: Weight of the normalised BM25 score for FAQ entries (or of the BM25 ranks
            for ``rrf``).
        passage_dense_weight: Weight of the cosine similarity for document passages.
        passage_bm25_weight: Weight of the normalised BM25 score for document passages.
        faq_boost: Added when an FAQ entry's question equals the query.
        dense_scale: ``cosine`` (default: passages weigh their cosine as it is) or ``minmax``
            (their cosines rescaled to [0, 1] over the candidate passages first).
        rrf_k: RRF constant (``rrf`` mode only).
        top_k: Documents returned.
    """

    def __init__(
        self,
        mode: str = "convex",
        dense_weight: float = 0.95,
        bm25_weight: float = 0.05,
        passage_dense_weight: float = 0.8,
        passage_bm25_weight: float = 0.2,
        faq_boost: float = 0.2,
        rrf_k: int = 60,
        top_k: int = 5,
        dense_scale: str = "cosine",
    ) -> None:
        if mode not in ("convex", "rrf"):
            raise ValueError(f"mode must be 'convex' or 'rrf', not {mode!r}")
        if dense_scale not in ("cosine", "minmax"):
            raise ValueError(f"dense_scale must be 'cosine' or 'minmax', not {dense_scale!r}")
        pairs = ((dense_weight, bm25_weight), (passage_dense_weight, passage_bm25_weight))
        for dense_w, bm25_w in pairs:
            if dense_w < 0 or bm25_w < 0 or dense_w + bm25_w == 0:
                raise ValueError(
                    f"fusion weights must be >= 0 and not both 0, not {dense_w!r} and {bm25_w!r}"
                )
        self.mode = mode
        self.dense_weight = dense_weight
        self.bm25_weight = bm25_weight
        self.passage_dense_weight = passage_dense_weight
        self.passage_bm25_weight = passage_bm25_weight
        self.faq_boost = faq_boost
        self.rrf_k = rrf_k
        self.top_k = top_k
        self.dense_scale = dense_scale

    @component.output_types(documents=list[Document])
    def run(
        self,
        dense_documents: list[Document],
        bm25_documents: list[Document],
        query: str = "",
        query_embedding: list[float] | None = None,
    ) -> dict:
        """Return the fused ranking, best first."""
        docs: dict[str, Document] = {}
        for doc in [*dense_documents, *bm25_documents]:
            docs.setdefault(doc.id, doc)
        dense = {d.id: float(d.score or 0.0) for d in dense_documents}
        if query_embedding is not None:
            q = np.asarray(query_embedding, dtype=np.float32)
            qn = np.linalg.norm(q) or 1.0
            for doc_id, doc in docs.items():
                if doc_id not in dense and doc.embedding is not None:
                    e = np.asarray(doc.embedding, dtype=np.float32)
                    dense[doc_id] = float(q @ e / (qn * (np.linalg.norm(e) or 1.0)))
        top_bm25 = max((d.score or 0.0 for d in bm25_documents), default=0.0) or 1.0
        bm25 = {d.id: float(d.score or 0.0) / top_bm25 for d in bm25_documents}
        if self.mode == "rrf":
            fused = {i: 0.0 for i in docs}
            for weight, ranking in (
                (self.dense_weight, dense_documents),
                (self.bm25_weight, bm25_documents),
            ):
                for rank, doc in enumerate(ranking):
                    fused[doc.id] += weight / (self.rrf_k + rank + 1)
        else:
            passage_dense = self._passage_dense(docs, dense)
            fused = {}
            for i, doc in docs.items():
                if doc.meta.get("faq_question"):
                    dense_w, bm25_w = self.dense_weight, self.bm25_weight
                    cosine = dense.get(i, 0.0)
                else:
                    dense_w, bm25_w = self.passage_dense_weight, self.passage_bm25_weight
                    cosine = passage_dense.get(i, 0.0)
                fused[i] = dense_w * cosine + bm25_w * bm25.get(i, 0.0)
        wanted = normalize_question(query) if query else ""
        for doc_id, doc in docs.items():
            question = doc.meta.get("faq_question")
            if wanted and question and normalize_question(question) == wanted:
                fused[doc_id] += self.faq_boost
        ordered = sorted(fused, key=lambda i: -fused[i])[: self.top_k]
        return {
            "documents": [
                replace(
                    docs[i],
                    score=fused[i],
                    meta={
                        **docs[i].meta,
                        "dense_score": dense.get(i),
                        "bm25_score": bm25.get(i, 0.0),
                    },
                )
                for i in ordered
            ]
        }

    def _passage_dense(
        self, docs: dict[str, Document], dense: dict[str, float]
    ) -> dict[str, float]:
        """The passages' cosines as they are weighed: raw, or min-max scaled (``dense_scale``)."""
        scores = {i: v for i, v in dense.items() if not docs[i].meta.get("faq_question")}
        if self.dense_scale == "cosine" or not scores:
            return scores
        low, high = min(scores.values()), max(scores.values())
        span = high - low
        return {i: (v - low) / span if span > 0 else 1.0 for i, v in scores.items()}
