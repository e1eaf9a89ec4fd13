"""The knowledge index: ingest files incrementally into a persisted Haystack document store.

The store is the embedded ``InMemoryDocumentStore`` saved as JSON under ``KEFU_HOME`` (BM25
tokenises Chinese per character, words elsewhere) or PostgreSQL + pgvector (see
:mod:`knowledge.stores`). A manifest kept with the store records, per source file, its content
hash and document ids, so re-ingesting only re-embeds files that changed, ``remove`` deletes
one source, and a changed encoder rebuilds everything.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from haystack import Document

from components.errors import KefuError, KnowledgeBaseError
from knowledge.converters import SUPPORTED, convert_file
from knowledge.encoders import prefixes_for
from knowledge.stores import BM25_ALGORITHM, BM25_TOKENS, KnowledgeStore

if TYPE_CHECKING:
    from components.settings import KnowledgeSettings

logger = logging.getLogger(__name__)

# 4: Chinese passages embedded by multilingual-e5 with its "passage: " / "query: " prefixes
INDEX_VERSION = 4
__all__ = ["IngestReport", "KnowledgeIndex", "build_index"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """Files to ingest: the given files, and supported files found under given folders."""
    files: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.suffix.lower() in SUPPORTED)
        else:
            files.append(item)
    return files


@dataclass
class IngestReport:
    """What one ingest run did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    sections: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        """Whether the index was written."""
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        """One line for people."""
        text = (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} "
            f"unchanged, {len(self.removed)} removed, {len(self.failed)} failed; "
            f"{self.sections} sections indexed ({self.seconds:.1f} s)"
        )
        return text


class KnowledgeIndex:
    """Incremental ingestion into a store.

    Args:
        settings: The validated knowledge settings; the index reads ``zh_encoder``, the encoder
            of Chinese passages (``meta.lang == "zh"``); everything else is embedded with
            ``encoder``.
        store: Where the index lives (:class:`knowledge.stores.MemoryStore` or
            :class:`knowledge.stores.PgvectorStore`, see
            :func:`~knowledge.stores.store_from_settings`).
        encoder: Sentence-transformers model folder (default: the bundled MiniLM).
    """

    def __init__(
        self,
        settings: KnowledgeSettings,
        store: KnowledgeStore,
        *,
        encoder: str | None = None,
    ) -> None:
        self._encoder = encoder
        self._zh_setting = settings.zh_encoder
        self._zh_encoder: str | None = None
        self._zh_embedder = None
        self.store = store
        self.index_path = getattr(self.store, "index_path", None)
        self._embedder = None

    @property
    def encoder(self) -> str:
        """The encoder folder in use."""
        if self._encoder is None:
            from components.model_prep import minilm_path

            self._encoder = str(minilm_path())
        return self._encoder

    @property
    def zh_encoder(self) -> str | None:
        """The Chinese passages' encoder folder, or None (they use :attr:`encoder`)."""
        if self._zh_encoder is None and self._zh_setting is not None:
            from components.model_prep import resolve_zh_encoder

            self._zh_encoder = resolve_zh_encoder(self._zh_setting) or ""
        return self._zh_encoder or None

    # ------------------------------------------------------------------ state
    def _fingerprint(self) -> str:
        # the encoders and the prefixes their texts were embedded with: a change rebuilds
        en = f"{Path(self.encoder).name}+{prefixes_for(self.encoder).tag}"
        zh = "-"
        if self.zh_encoder:
            zh = f"{Path(self.zh_encoder).name}+{prefixes_for(self.zh_encoder).tag}"
        return f"v{INDEX_VERSION}|{en}|{zh}|{BM25_ALGORITHM}|{BM25_TOKENS}"

    def _load(self) -> tuple[object, dict]:
        fresh = {"fingerprint": self._fingerprint(), "sources": {}}
        try:
            store = self.store.open()
        except KnowledgeBaseError as exc:
            if not exc.fields.get("rebuildable"):
                raise
            # a damaged embedded index is rebuilt by the ingest that finds it
            logger.warning("knowledge.rebuild reason=unreadable store=%s", self.store.kind)
            return self.store.clear(None), fresh
        stored = self.store.read_manifest()
        if stored is not None and stored.get("fingerprint") == fresh["fingerprint"]:
            return store, stored
        if stored is not None or self.store.exists():
            logger.info("knowledge.rebuild reason=settings_changed store=%s", self.store.kind)
        return self.store.clear(store), fresh

    def _save(self, store: object, manifest: dict) -> None:
        self.store.save(store, manifest)

    def _embedder_for(self, chinese: bool, progress: bool):  # noqa: ANN202 - a Haystack embedder
        attr = "_zh_embedder" if chinese else "_embedder"
        if getattr(self, attr) is None:
            from haystack_integrations.components.embedders.sentence_transformers import (
                SentenceTransformersDocumentEmbedder,
            )

            embedder = SentenceTransformersDocumentEmbedder(
                model=self.zh_encoder if chinese else self.encoder,
                local_files_only=True,
                normalize_embeddings=True,
                progress_bar=progress,
            )
            embedder.warm_up()
            setattr(self, attr, embedder)
        return getattr(self, attr)

    def _embed(self, documents: list[Document], progress: bool) -> list[Document]:
        # FAQ entries are found by their question: embed the question alone (the answer would
        # dilute it), but keep question + answer as the BM25 text and the answer as the body;
        # Chinese passages with the Chinese encoder when there is one. An e5 encoder gets its
        # prefixes (knowledge.encoders): "passage: " before a passage, "query: " before an FAQ
        # entry's question (matched to the customer's question: e5's symmetric use)
        vectors: dict[str, list[float]] = {}
        for chinese in (False, True):
            group = [
                d
                for d in documents
                if (bool(self.zh_encoder) and d.meta.get("lang") == "zh") == chinese
            ]
            if not group:
                continue
            prefixes = prefixes_for(self.zh_encoder if chinese else self.encoder)
            probes = [
                Document(
                    id=d.id,
                    content=prefixes.unit(
                        d.meta.get("faq_question") or d.content or "",
                        question=bool(d.meta.get("faq_question")),
                    ),
                )
                for d in group
            ]
            embedded = self._embedder_for(chinese, progress).run(documents=probes)["documents"]
            vectors.update({d.id: e.embedding for d, e in zip(group, embedded, strict=True)})
        return [replace(d, embedding=vectors[d.id]) for d in documents]

    # ------------------------------------------------------------------ operations
    def ingest(
        self, paths: Iterable[str | Path], prune: bool = False, progress: bool = True
    ) -> IngestReport:
        """Add new files, re-index changed ones, skip unchanged ones.

        Args:
            paths: Files and/or folders.
            prune: Also remove indexed sources from the given folders that no longer exist.
            progress: Print per-file progress and an embedding progress bar.

        Bad files are reported in ``IngestReport.failed`` and never stop the run.
        """
        started = time.monotonic()
        paths = list(paths)
        store, manifest = self._load()
        sources = manifest["sources"]
        report = IngestReport()
        files = expand(paths)
        for number, path in enumerate(files, start=1):
            key = str(path.resolve())
            if progress:
                print(f"[kefu] [{number}/{len(files)}] {path.name}", file=sys.stderr, flush=True)
            try:
                digest = _sha256(path)
                if key in sources and sources[key]["sha256"] == digest:
                    report.unchanged.append(path.name)
                    continue
                documents = self._embed(convert_file(path), progress)
            except (KefuError, OSError) as exc:
                report.failed[path.name] = str(exc)
                logger.warning(
                    "knowledge.ingest_failed file=%s error=%s", path.name, type(exc).__name__
                )
                continue
            (report.updated if key in sources else report.added).append(path.name)
            if key in sources:
                store.delete_documents(sources[key]["doc_ids"])
            store.write_documents(documents)
            sources[key] = {
                "name": path.name,
                "sha256": digest,
                "doc_ids": [d.id for d in documents],
                "updated_at": documents[0].meta["updated_at"] if documents else None,
            }
        if prune:
            folders = [Path(p).resolve() for p in paths if Path(p).is_dir()]
            for key in list(sources):
                gone = not Path(key).exists()
                if gone and any(Path(key).is_relative_to(folder) for folder in folders):
                    store.delete_documents(sources.pop(key)["doc_ids"])
                    report.removed.append(Path(key).name)
        if report.changed or not self.store.exists():
            self._save(store, manifest)
        report.sections = store.count_documents()
        report.seconds = time.monotonic() - started
        return report

    def remove(self, source: str) -> list[str]:
        """Delete every indexed source whose path or file name is ``source``.

        Raises:
            KnowledgeBaseError: when nothing matches.
        """
        store, manifest = self._load()
        sources = manifest["sources"]
        wanted = str(Path(source).resolve())
        keys = [k for k in sources if k == wanted or sources[k]["name"] == source]
        if not keys:
            raise KnowledgeBaseError(
                f"'{source}' is not in the knowledge index",
                hint="`python -m knowledge list` shows what is indexed",
            )
        for key in keys:
            store.delete_documents(sources.pop(key)["doc_ids"])
        self._save(store, manifest)
        return [Path(k).name for k in keys]

    def sources(self) -> list[dict]:
        """Indexed sources: name, path, sections, updated_at."""
        manifest = self.store.read_manifest()
        if not manifest:
            return []
        return [
            {
                "name": entry["name"],
                "path": key,
                "sections": len(entry["doc_ids"]),
                "updated_at": entry["updated_at"],
            }
            for key, entry in sorted(manifest["sources"].items(), key=lambda kv: kv[1]["name"])
        ]

    def stats(self) -> dict:
        """Totals for ``python -m knowledge stats``."""
        items = self.sources()
        return {
            **self.store.describe(),
            "sources": len(items),
            "sections": sum(i["sections"] for i in items),
            "encoder": self.encoder,
        }


def build_index(docs: Path, settings: KnowledgeSettings, store: KnowledgeStore) -> IngestReport:
    """Sync the index with a folder (what ``make index`` runs): add, update and prune.

    Args:
        docs: The documents folder (``kefu.knowledge.docs``, resolved per assistant).
        settings: The validated knowledge settings (see :class:`KnowledgeIndex`).
        store: Where the index lives.
    """
    return KnowledgeIndex(settings, store).ingest([docs], prune=True)
