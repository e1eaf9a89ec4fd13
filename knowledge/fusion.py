"""Hybrid ranking of dense and BM25 candidates (a Haystack component).

Naive reciprocal rank fusion throws away how *sure* each retriever is (on StackFAQ it drops
below the dense retriever alone), so the default here is a calibrated convex combination:

    score = dense_weight * cosine + bm25_weight * bm25 / max_bm25 (+ faq_boost)

where the cosine is computed for every candidate (BM25-only hits included, from their stored
embeddings). Measured on StackFAQ (benchmarks/README.md), BM25 adds a little on top of a good
encoder, so its default weight is small. ``faq_boost`` rewards an FAQ entry whose question
equals the query after normalisation. ``mode="rrf"`` gives weighted reciprocal rank fusion,
for comparison.
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
        dense_weight: Weight of the cosine similarity (or of the dense ranks for ``rrf``).
        bm25_weight: Weight of the normalised BM25 score (or of the BM25 ranks).
        faq_boost: Added when an FAQ entry's question equals the query.
        rrf_k: RRF constant (``rrf`` mode only).
        top_k: Documents returned.
    """

    def __init__(
        self,
        mode: str = "convex",
        dense_weight: float = 0.95,
        bm25_weight: float = 0.05,
        faq_boost: float = 0.2,
        rrf_k: int = 60,
        top_k: int = 5,
    ) -> None:
        if mode not in ("convex", "rrf"):
            raise ValueError(f"mode must be 'convex' or 'rrf', not {mode!r}")
        if dense_weight < 0 or bm25_weight < 0 or dense_weight + bm25_weight == 0:
            raise ValueError("fusion weights must be >= 0 and not both 0")
        self.mode = mode
        self.dense_weight = dense_weight
        self.bm25_weight = bm25_weight
        self.faq_boost = faq_boost
        self.rrf_k = rrf_k
        self.top_k = top_k

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
            fused = {
                i: self.dense_weight * dense.get(i, 0.0) + self.bm25_weight * bm25.get(i, 0.0)
                for i in docs
            }
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
