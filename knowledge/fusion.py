"""Weighted reciprocal rank fusion of a dense and a BM25 ranking (a Haystack component).

Haystack's ``DocumentJoiner`` applies its ``weights`` in the order the inputs *arrive*, which
depends on pipeline scheduling, so the fusion is done here with explicitly named inputs.
"""

from __future__ import annotations

from dataclasses import replace

from haystack import Document, component


@component
class WeightedRankFusion:
    """Fuse two rankings with weighted RRF: ``score = sum(w / (k + rank))``.

    Each output document keeps its dense cosine similarity in ``meta["dense_score"]`` (None when
    the dense retriever did not return it), which the caller uses to decide "no answer".

    Args:
        dense_weight: Weight of the dense (embedding) ranking.
        bm25_weight: Weight of the BM25 ranking.
        k: RRF constant; larger values flatten the rank differences.
        top_k: Documents returned.
    """

    def __init__(
        self, dense_weight: float = 0.7, bm25_weight: float = 0.3, k: int = 60, top_k: int = 5
    ) -> None:
        if dense_weight < 0 or bm25_weight < 0 or dense_weight + bm25_weight == 0:
            raise ValueError("fusion weights must be >= 0 and not both 0")
        self.dense_weight = dense_weight
        self.bm25_weight = bm25_weight
        self.k = k
        self.top_k = top_k

    @component.output_types(documents=list[Document])
    def run(self, dense_documents: list[Document], bm25_documents: list[Document]) -> dict:
        """Return the fused ranking (best first)."""
        scores: dict[str, float] = {}
        docs: dict[str, Document] = {}
        dense_scores = {d.id: d.score for d in dense_documents}
        for weight, ranking in (
            (self.dense_weight, dense_documents),
            (self.bm25_weight, bm25_documents),
        ):
            for rank, doc in enumerate(ranking):
                scores[doc.id] = scores.get(doc.id, 0.0) + weight / (self.k + rank + 1)
                docs.setdefault(doc.id, doc)
        ordered = sorted(scores, key=lambda i: -scores[i])[: self.top_k]
        return {
            "documents": [
                replace(
                    docs[i],
                    score=scores[i],
                    meta={**docs[i].meta, "dense_score": dense_scores.get(i)},
                )
                for i in ordered
            ]
        }
