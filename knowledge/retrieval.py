"""Query the knowledge index: BM25 + dense retrieval joined by weighted reciprocal rank fusion.

:class:`KnowledgeBase` is what the action server uses. It loads the persisted store once
(:meth:`KnowledgeBase.warm_up`), runs a Haystack ``Pipeline`` per question and returns the best
passage with its source document, or ``found=False`` when nothing is relevant enough.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import (
    InMemoryBM25Retriever,
    InMemoryEmbeddingRetriever,
)
from haystack.document_stores.in_memory import InMemoryDocumentStore

from components.errors import KnowledgeBaseError
from knowledge.fusion import WeightedRankFusion
from knowledge.index import default_index_path

logger = logging.getLogger(__name__)


@dataclass
class Answer:
    """The knowledge base's reply to one question."""

    found: bool
    text: str = ""
    source: str = ""
    title: str = ""
    section: str = ""
    score: float = 0.0
    sources: list[dict] = field(default_factory=list)


class KnowledgeBase:
    """Hybrid retrieval over the persisted shop documents.

    Args:
        index_path: The saved document store (default: ``KEFU_HOME/knowledge_index.json``).
        encoder: Sentence-transformers model folder (default: bundled MiniLM).
        top_k: Candidates taken from each retriever.
        min_similarity: Cosine similarity of the best dense hit below which the question is
            treated as unanswerable.
    """

    def __init__(
        self,
        index_path: str | Path | None = None,
        encoder: str | None = None,
        top_k: int = 5,
        min_similarity: float = 0.35,
    ) -> None:
        self.index_path = Path(index_path or default_index_path())
        self.encoder = encoder
        self.top_k = top_k
        self.min_similarity = min_similarity
        self._pipeline: Pipeline | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the store and the encoder (idempotent, thread-safe).

        Raises:
            KnowledgeBaseError: when the index has not been built.
        """
        if self._pipeline is not None:
            return
        with self._lock:
            if self._pipeline is not None:
                return
            from haystack_integrations.components.embedders.sentence_transformers import (
                SentenceTransformersTextEmbedder,
            )

            from components.model_prep import minilm_path

            if not self.index_path.is_file():
                raise KnowledgeBaseError(
                    f"knowledge index missing at {self.index_path}",
                    hint="run `python -m knowledge build`",
                    path=str(self.index_path),
                )
            store = InMemoryDocumentStore.load_from_disk(str(self.index_path))
            pipeline = Pipeline()
            pipeline.add_component(
                "embedder",
                SentenceTransformersTextEmbedder(
                    model=self.encoder or str(minilm_path()),
                    local_files_only=True,
                    normalize_embeddings=True,
                    progress_bar=False,
                ),
            )
            pipeline.add_component(
                "dense", InMemoryEmbeddingRetriever(store, top_k=self.top_k, scale_score=False)
            )
            pipeline.add_component("bm25", InMemoryBM25Retriever(store, top_k=self.top_k))
            pipeline.add_component("fusion", WeightedRankFusion(top_k=self.top_k))
            pipeline.connect("embedder.embedding", "dense.query_embedding")
            pipeline.connect("dense.documents", "fusion.dense_documents")
            pipeline.connect("bm25.documents", "fusion.bm25_documents")
            pipeline.warm_up()
            self._pipeline = pipeline
            logger.info("knowledge.loaded documents=%d", store.count_documents())

    def retrieve(self, question: str) -> list[Document]:
        """Fused ranking, best first; each document has ``meta["dense_score"]``."""
        self.warm_up()
        try:
            out = self._pipeline.run({"embedder": {"text": question}, "bm25": {"query": question}})
        except Exception as exc:
            raise KnowledgeBaseError(f"retrieval failed: {type(exc).__name__}") from exc
        return out["fusion"]["documents"]

    def answer(self, question: str) -> Answer:
        """Best passage for ``question`` with its source, or ``found=False``.

        The fused top passage is used when its own dense similarity reaches
        ``min_similarity``; otherwise the best dense passage that does; otherwise no answer.
        """
        if not question or not question.strip():
            return Answer(found=False)
        ranked = self.retrieve(question)
        relevant = [d for d in ranked if (d.meta.get("dense_score") or 0.0) >= self.min_similarity]
        best_similarity = max((d.meta.get("dense_score") or 0.0 for d in ranked), default=0.0)
        if not relevant:
            logger.info("knowledge.no_answer similarity=%.3f", best_similarity)
            return Answer(found=False, score=best_similarity)
        top = relevant[0]
        sources = []
        for doc in relevant:
            entry = {"source": doc.meta["source"], "title": doc.meta["title"]}
            if entry not in sources:
                sources.append(entry)
        return Answer(
            found=True,
            text=top.meta.get("body", top.content),
            source=top.meta["source"],
            title=top.meta["title"],
            section=top.meta.get("section", ""),
            score=top.meta["dense_score"],
            sources=sources[:3],
        )
