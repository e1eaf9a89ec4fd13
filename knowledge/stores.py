"""Where the knowledge index lives: an embedded file store, or PostgreSQL + pgvector.

Both backends hold the same Haystack documents and a *manifest* (per source file: content hash,
document ids, updated-at; plus a fingerprint of the index settings) so that ingestion is
incremental whatever the store:

* :class:`MemoryStore` (default) — Haystack's ``InMemoryDocumentStore`` saved as JSON under
  ``KEFU_HOME``, the manifest in a file beside it. One machine, no server.
* :class:`PgvectorStore` — the official ``pgvector-haystack`` integration
  (``pip install '.[pgvector]'``): documents and embeddings in a PostgreSQL table, the
  manifest in ``<table>_manifest`` of the same database, dense search done by the server
  (exact or HNSW). Several action servers can share one index. Keyword ranking stays BM25 in
  the process, over the store's texts loaded at warm-up: PostgreSQL's full-text search has no
  Chinese parser and ``plainto_tsquery`` requires every query word, which loses most answers.

Choose with ``kefu.knowledge.store: memory|pgvector`` in ``endpoints.yml`` (or the
``KEFU_KB_STORE`` override); pgvector reads the connection string from ``PG_CONN_STR`` (Haystack's
variable, a secret) and the table from ``kefu.knowledge.table`` (or ``KEFU_KB_TABLE``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from haystack.document_stores.in_memory import InMemoryDocumentStore

from components.errors import KnowledgeBaseError
from components.text import CJK_CLASS

if TYPE_CHECKING:
    import psycopg

    from components.settings import KnowledgeSettings

logger = logging.getLogger(__name__)

BM25_ALGORITHM = "BM25Plus"
# one token per CJK character, words of 2+ characters elsewhere
BM25_TOKENS = f"(?u)[{CJK_CLASS}]|[^\\W{CJK_CLASS}]{{2,}}"


def new_memory_store() -> InMemoryDocumentStore:
    """An empty in-memory store with Kefu's BM25 settings."""
    return InMemoryDocumentStore(
        bm25_algorithm=BM25_ALGORITHM,
        bm25_tokenization_regex=BM25_TOKENS,
        embedding_similarity_function="cosine",
    )


class KnowledgeStore(Protocol):
    """What the index (writes) and the knowledge base (queries) need from a store."""

    kind: str

    def exists(self) -> bool:
        """Whether an index has been built here."""

    def open(self) -> Any:
        """The Haystack document store (created empty when there is none yet)."""

    def read_manifest(self) -> dict | None:
        """The saved manifest, or None when there is none or it is unreadable."""

    def save(self, store: Any, manifest: dict) -> None:
        """Make the documents written to ``store`` and ``manifest`` durable."""

    def clear(self, store: Any) -> Any:
        """Delete every document (settings changed); returns the store to write to."""

    def dense_retriever(self, store: Any, top_k: int) -> Any:
        """A Haystack retriever component taking ``query_embedding``, returning documents."""

    def keyword_store(self, store: Any) -> InMemoryDocumentStore:
        """An in-memory store with the same texts for BM25 (may be ``store`` itself)."""

    def describe(self) -> dict:
        """Location and size for ``python -m knowledge stats`` (no secrets)."""


class MemoryStore:
    """The embedded store: one JSON file plus ``<name>.manifest.json``.

    Args:
        index_path: The store's JSON file (``kefu.knowledge.index_path``, resolved per assistant
            by :meth:`~components.settings.KnowledgeSettings.resolved`).
    """

    kind = "memory"

    def __init__(self, index_path: str | Path) -> None:
        self.index_path = Path(index_path)
        self.manifest_path = self.index_path.with_suffix(".manifest.json")

    def exists(self) -> bool:
        """Whether the index file has been written."""
        return self.index_path.is_file()

    def open(self) -> InMemoryDocumentStore:
        """Load the saved store, or return a new empty one when there is no index file yet.

        Raises:
            KnowledgeBaseError: when the index file cannot be loaded (rebuildable).
        """
        if not self.exists():
            return new_memory_store()
        try:
            return InMemoryDocumentStore.load_from_disk(str(self.index_path))
        except Exception as exc:
            raise KnowledgeBaseError(
                f"knowledge index unreadable: {type(exc).__name__}",
                hint="rebuild it with `python -m knowledge build`",
                path=str(self.index_path),
                rebuildable=True,
            ) from exc

    def read_manifest(self) -> dict | None:
        """The manifest beside the index file, or None when missing or unreadable."""
        if not (self.exists() and self.manifest_path.is_file()):
            return None
        try:
            return json.loads(self.manifest_path.read_text())
        except (ValueError, OSError) as exc:
            logger.warning("knowledge.manifest_unreadable error=%s", type(exc).__name__)
            return None

    def save(self, store: InMemoryDocumentStore, manifest: dict) -> None:
        """Write ``store`` to the index file (atomically replaced), then the manifest."""
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.index_path.with_suffix(".partial")
        store.save_to_disk(str(tmp))
        tmp.replace(self.index_path)
        self.manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1))

    def clear(self, store: InMemoryDocumentStore | None) -> InMemoryDocumentStore:
        """A new empty store to write to (``store`` is left as it is)."""
        return new_memory_store()

    def dense_retriever(self, store: InMemoryDocumentStore, top_k: int) -> Any:
        """A :class:`~knowledge.retrievers.MatrixEmbeddingRetriever` over ``store``."""
        from knowledge.retrievers import MatrixEmbeddingRetriever

        return MatrixEmbeddingRetriever(store, top_k=top_k)

    def keyword_store(self, store: InMemoryDocumentStore) -> InMemoryDocumentStore:
        """``store`` itself: it already ranks by BM25."""
        return store

    def describe(self) -> dict:
        """The store kind, the index file and its size in bytes."""
        size = self.index_path.stat().st_size if self.exists() else 0
        return {"store": self.kind, "index": str(self.index_path), "size_bytes": size}


class PgvectorStore:
    """PostgreSQL + pgvector through ``pgvector-haystack``.

    Args:
        table: Table of the documents (the manifest goes to ``<table>_manifest``), a name
            :func:`~components.settings.load_settings` has checked (``kefu.knowledge.table``).
        search_strategy: ``exact_nearest_neighbor`` or ``hnsw`` (approximate, for large
            indexes): ``kefu.knowledge.search``.
        embedding_dimension: Width of the encoder's embeddings (MiniLM: 384).
        connection_env: Environment variable holding the ``postgresql://`` connection string.
    """

    kind = "pgvector"

    def __init__(
        self,
        *,
        table: str,
        search_strategy: str,
        embedding_dimension: int = 384,
        connection_env: str = "PG_CONN_STR",
    ) -> None:
        self.connection_env = connection_env
        self.table = table
        self.embedding_dimension = embedding_dimension
        self.search_strategy = search_strategy
        self._store = None

    def _url(self) -> str:
        url = os.environ.get(self.connection_env, "")
        if not url:
            raise KnowledgeBaseError(
                f"{self.connection_env} is not set",
                hint=f"export {self.connection_env}=postgresql://USER:PASSWORD@HOST:5432/DB",
            )
        return url

    def _connect(self) -> psycopg.Connection:
        import psycopg

        try:
            return psycopg.connect(self._url(), autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise KnowledgeBaseError(
                f"cannot connect to PostgreSQL: {type(exc).__name__}",
                hint=f"check {self.connection_env} and that the server is running",
            ) from exc

    def _manifest_sql(self, connection: psycopg.Connection) -> None:
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table}_manifest (id int PRIMARY KEY, body jsonb)"
        )

    def exists(self) -> bool:
        """Whether a manifest has been saved in the database."""
        return self.read_manifest() is not None

    def open(self) -> Any:
        """The ``PgvectorDocumentStore`` for the table (connected once, then reused).

        Raises:
            KnowledgeBaseError: when pgvector-haystack is missing, the connection string is
                not set or the server cannot be reached.
        """
        if self._store is not None:
            return self._store
        try:
            from haystack.utils import Secret
            from haystack_integrations.document_stores.pgvector import PgvectorDocumentStore
        except ImportError as exc:
            raise KnowledgeBaseError(
                "the pgvector store needs the pgvector-haystack package",
                hint="pip install '.[pgvector]'",
            ) from exc
        self._url()  # a clear error before Haystack's
        store = PgvectorDocumentStore(
            connection_string=Secret.from_env_var(self.connection_env),
            table_name=self.table,
            embedding_dimension=self.embedding_dimension,
            vector_function="cosine_similarity",
            search_strategy=self.search_strategy,
            hnsw_index_name=f"{self.table}_hnsw",
            keyword_index_name=f"{self.table}_keyword",
            language="simple",
        )
        try:
            store.count_documents()  # connects and creates the table/extension if needed
        except Exception as exc:
            raise KnowledgeBaseError(
                f"PostgreSQL store unavailable: {type(exc).__name__}",
                hint=f"check {self.connection_env}, the server and the pgvector extension",
                table=self.table,
            ) from exc
        self._store = store
        return store

    def read_manifest(self) -> dict | None:
        """The manifest row of ``<table>_manifest``, or None when none has been saved."""
        with self._connect() as connection:
            self._manifest_sql(connection)
            row = connection.execute(
                f"SELECT body FROM {self.table}_manifest WHERE id = 1"
            ).fetchone()
        return row[0] if row else None

    def save(self, store: Any, manifest: dict) -> None:
        """Upsert ``manifest`` (the documents are already in the database)."""
        from psycopg.types.json import Jsonb

        with self._connect() as connection:
            self._manifest_sql(connection)
            connection.execute(
                f"INSERT INTO {self.table}_manifest (id, body) VALUES (1, %s) "
                "ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
                (Jsonb(manifest),),
            )

    def clear(self, store: Any) -> Any:
        """Delete every document from the table; returns ``store`` itself."""
        store.delete_all_documents()
        return store

    def dense_retriever(self, store: Any, top_k: int) -> Any:
        """A ``PgvectorEmbeddingRetriever`` over ``store`` (search done by the server)."""
        from haystack_integrations.components.retrievers.pgvector import (
            PgvectorEmbeddingRetriever,
        )

        return PgvectorEmbeddingRetriever(document_store=store, top_k=top_k)

    def keyword_store(self, store: Any) -> InMemoryDocumentStore:
        """An in-memory copy of every document in ``store``, for BM25 in the process."""
        # embeddings come along: the fusion scores BM25-only hits by their cosine too
        local = new_memory_store()
        local.write_documents(store.filter_documents())
        return local

    def describe(self) -> dict:
        """The store kind, table, connection variable (not its value) and search strategy."""
        return {
            "store": self.kind,
            "table": self.table,
            "connection": f"${self.connection_env}",
            "search_strategy": self.search_strategy,
        }


def store_from_settings(
    config: KnowledgeSettings, embedding_dimension: int = 384
) -> KnowledgeStore:
    """The store ``config`` names (``kefu.knowledge.store``: ``memory`` or ``pgvector``).

    Args:
        config: Validated settings with their paths resolved
            (:meth:`~components.settings.KnowledgeSettings.resolved`).
        embedding_dimension: Width of the encoder's embeddings (pgvector's column).

    Raises:
        ValueError: for a memory store whose ``index_path`` was not resolved.
    """
    if config.store == "pgvector":
        return PgvectorStore(
            table=config.table,
            search_strategy=config.search,
            embedding_dimension=embedding_dimension,
        )
    if config.index_path is None:
        raise ValueError("index_path is not resolved: use KnowledgeSettings.resolved()")
    return MemoryStore(config.index_path)
