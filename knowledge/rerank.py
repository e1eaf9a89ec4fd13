"""Second-stage reranking of fused candidates by their best-matching sentence (Haystack).

A bi-encoder embeds a whole section as one vector, so a question about one sentence of a long
section ("My headphones arrived dead") is diluted by the others, and a neighbouring section that
shares the question's topic words wins. :class:`SentenceReranker` is a late-interaction
reranker with the same encoder: it scores every sentence of each candidate against the query
and blends the best sentence's cosine into the candidate's fused score::

    score = (1 - weight) * fused_score + weight * max_sentence_cosine

A passage's heading counts as one of its sentences. FAQ entries have one "sentence", their
question, so they keep their dense score. With an e5 encoder each unit is embedded after its
prefix (:mod:`knowledge.encoders`: ``"passage: "``, or ``"query: "`` for an FAQ question); the
query embedding handed in must have been made with ``"query: "`` (the knowledge base's
embedders do that). Sentence
embeddings are computed on first sight and cached per document id (bounded), so a query costs
one batch encode of the unseen candidates' sentences at most. No cross-encoder ships offline; a
user with one can put Haystack's ``SentenceTransformersSimilarityRanker`` in its place.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import numpy as np
from haystack import Document, component

from components.text import sentences
from knowledge.encoders import Prefixes, prefixes_for


def passage_sentences(
    doc: Document, max_sentences: int = 16, prefixes: Prefixes | None = None
) -> list[str]:
    """The units a passage is scored by, each after its encoder prefix (``prefixes``).

    That is its FAQ question, or else its heading ("Shipping policy: Delivery times and
    costs", a topic label the author wrote) and its body's sentences.
    """
    prefixes = prefixes or Prefixes()
    if doc.meta.get("faq_question"):
        return [prefixes.unit(doc.meta["faq_question"], question=True)]
    body = doc.meta.get("body") or doc.content or ""
    units = sentences(body)[:max_sentences]
    title, section = doc.meta.get("title"), doc.meta.get("section")
    heading = f"{title}: {section}" if title and section and section != title else title
    units = ([heading] if heading else []) + units or [body]
    return [prefixes.unit(u, question=False) for u in units]


@component
class SentenceReranker:
    """Blend each candidate's best sentence similarity into its score.

    Args:
        model: Sentence-transformers model folder (the retrieval encoder).
        weight: Share of the best sentence's cosine in the new score (0 = off, 1 = only it).
        top_k: Documents returned.
        max_sentences: Sentences per passage that are scored (the first ones).
        cache_size: Passages whose sentence embeddings are kept.
        prefixes: What goes before each unit (None: what ``model`` wants,
            :func:`~knowledge.encoders.prefixes_for`; e5 gets ``"passage: "``).

    Raises:
        ValueError: for a weight outside [0, 1] or non-positive sizes.
    """

    def __init__(
        self,
        model: str,
        weight: float = 0.5,
        top_k: int = 5,
        max_sentences: int = 16,
        cache_size: int = 20000,
        prefixes: Prefixes | None = None,
    ) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be within [0, 1], not {weight!r}")
        if top_k < 1 or max_sentences < 1 or cache_size < 1:
            raise ValueError("top_k, max_sentences and cache_size must be positive")
        self.model = model
        self.weight = weight
        self.top_k = top_k
        self.max_sentences = max_sentences
        self.cache_size = cache_size
        self.prefixes = prefixes if prefixes is not None else prefixes_for(model)
        self._encoder: Any = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the encoder (shared with Haystack's embedders of the same model)."""
        if self._encoder is not None:
            return
        from haystack_integrations.components.embedders.sentence_transformers import (
            SentenceTransformersTextEmbedder,
        )

        embedder = SentenceTransformersTextEmbedder(
            model=self.model, local_files_only=True, normalize_embeddings=True, progress_bar=False
        )
        embedder.warm_up()  # Haystack caches one backend per model and settings
        self._encoder = embedder.embedding_backend

    def prime(self, documents: list[Document]) -> None:
        """Embed the sentences of ``documents`` now, so that the first queries do not pay for it.

        At most ``cache_size`` documents are embedded.
        """
        self.warm_up()
        for start in range(0, min(len(documents), self.cache_size), 256):
            self._sentence_matrix(documents[start : start + 256])

    def _sentence_matrix(self, docs: list[Document]) -> list[np.ndarray]:
        with self._lock:
            missing = [d for d in docs if d.id not in self._cache]
            if missing:
                units = [passage_sentences(d, self.max_sentences, self.prefixes) for d in missing]
                flat = [u for group in units for u in group]
                vectors = np.asarray(
                    self._encoder.embed(flat, batch_size=32, normalize_embeddings=True),
                    dtype=np.float32,
                )
                start = 0
                for doc, group in zip(missing, units, strict=True):
                    self._cache[doc.id] = vectors[start : start + len(group)]
                    start += len(group)
            for doc in docs:
                self._cache.move_to_end(doc.id)
            matrices = [self._cache[d.id] for d in docs]
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return matrices

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document], query_embedding: list[float]) -> dict:
        """Reranked documents, best first.

        Each carries its best sentence's cosine in ``meta["sentence_score"]`` and the fused
        score before reranking in ``meta["fused_score"]``.
        """
        if not documents or self.weight == 0.0:
            return {"documents": documents[: self.top_k]}
        self.warm_up()
        query = np.asarray(query_embedding, dtype=np.float32)
        query = query / (np.linalg.norm(query) or 1.0)
        best = [float((matrix @ query).max()) for matrix in self._sentence_matrix(documents)]
        scored = [
            replace(
                doc,
                score=(1 - self.weight) * float(doc.score or 0.0) + self.weight * sentence,
                meta={**doc.meta, "sentence_score": sentence, "fused_score": doc.score},
            )
            for doc, sentence in zip(documents, best, strict=True)
        ]
        scored.sort(key=lambda d: -(d.score or 0.0))
        return {"documents": scored[: self.top_k]}
