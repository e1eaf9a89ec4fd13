"""Query the knowledge index: BM25 + dense retrieval joined by reciprocal rank fusion.

:class:`KnowledgeBase` is what the action server uses. It loads the persisted store once
(:meth:`KnowledgeBase.warm_up`), runs a Haystack ``Pipeline`` per question and returns the best
passage with its source document, or ``found=False`` when nothing is relevant enough.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from haystack import Pipeline
from haystack.components.joiners import DocumentJoiner
from haystack.components.retrievers.in_memory import (
    InMemoryBM25Retriever,
    InMemoryEmbeddingRetriever,
)
from haystack.document_stores.in_memory import InMemoryDocumentStore

from components.errors import KnowledgeBaseError
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
            pipeline.add_component(
                "joiner",
                DocumentJoiner(
                    join_mode="reciprocal_rank_fusion", weights=[0.7, 0.3], top_k=self.top_k
                ),
            )
            pipeline.connect("embedder.embedding", "dense.query_embedding")
            pipeline.connect("dense.documents", "joiner.documents")
            pipeline.connect("bm25.documents", "joiner.documents")
            pipeline.warm_up()
            self._pipeline = pipeline
            logger.info("knowledge.loaded documents=%d", store.count_documents())

    def retrieve(self, question: str) -> tuple[list, dict[str, float]]:
        """Fused ranking plus the dense similarity of each retrieved document id."""
        self.warm_up()
        out = self._pipeline.run(
            {"embedder": {"text": question}, "bm25": {"query": question}},
            include_outputs_from={"dense"},
        )
        dense = {doc.id: float(doc.score or 0.0) for doc in out["dense"]["documents"]}
        return out["joiner"]["documents"], dense

    def answer(self, question: str) -> Answer:
        """Best passage for ``question`` with its source, or ``found=False``."""
        if not question or not question.strip():
            return Answer(found=False)
        ranked, dense = self.retrieve(question)
        best_similarity = max(dense.values(), default=0.0)
        if not ranked or best_similarity < self.min_similarity:
            logger.info("knowledge.no_answer similarity=%.3f", best_similarity)
            return Answer(found=False, score=best_similarity)
        top = ranked[0]
        sources = []
        for doc in ranked:
            entry = {"source": doc.meta["source"], "title": doc.meta["title"]}
            if entry not in sources:
                sources.append(entry)
        return Answer(
            found=True,
            text=top.content,
            source=top.meta["source"],
            title=top.meta["title"],
            section=top.meta.get("section", ""),
            score=dense.get(top.id, best_similarity),
            sources=sources[:3],
        )
