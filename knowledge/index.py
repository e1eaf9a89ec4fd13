"""Build the knowledge index: Markdown documents -> sections -> MiniLM embeddings -> disk.

The index is a Haystack ``InMemoryDocumentStore`` saved as JSON under ``KEFU_HOME``. A
fingerprint of the documents and settings is stored beside it, so :func:`build_index` only
re-embeds when a document or a setting changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from pathlib import Path

from haystack import Document
from haystack.components.preprocessors import MarkdownHeaderSplitter
from haystack.document_stores.in_memory import InMemoryDocumentStore

from components.errors import KnowledgeBaseError
from components.paths import kefu_home

logger = logging.getLogger(__name__)

DOCS_DIR = Path(__file__).resolve().parent / "docs"
INDEX_FILE = "knowledge_index.json"
BM25_ALGORITHM = "BM25Plus"
INDEX_VERSION = 2


def default_index_path() -> Path:
    """Where the index lives for this deployment."""
    return kefu_home() / INDEX_FILE


def _fingerprint(files: list[Path], encoder: str) -> str:
    digest = hashlib.sha256(f"v{INDEX_VERSION}|{encoder}|{BM25_ALGORITHM}".encode())
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _title_of(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def load_documents(docs_dir: Path) -> list[Document]:
    """Read every Markdown file and split it into one document per section.

    Raises:
        KnowledgeBaseError: when the folder holds no Markdown file.
    """
    files = sorted(docs_dir.glob("*.md"))
    if not files:
        raise KnowledgeBaseError(
            f"no Markdown documents in {docs_dir}", hint="add .md files", path=str(docs_dir)
        )
    documents = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        title = _title_of(text, path.stem)
        documents.append(Document(content=text, meta={"source": path.name, "title": title}))
    splitter = MarkdownHeaderSplitter(keep_headers=False, header_split_levels=[1, 2])
    sections = splitter.run(documents=documents)["documents"]
    result = []
    for doc in sections:
        content = (doc.content or "").strip()
        if not content:
            continue
        headers = doc.meta.get("parent_headers") or []
        section = doc.meta.get("header") or (headers[-1] if headers else doc.meta["title"])
        meta = {
            "source": doc.meta["source"],
            "title": doc.meta["title"],
            "section": section,
            "body": content,  # what the assistant quotes
        }
        # the heading is part of what is searched (BM25 reads content only): a question about
        # "payment methods" must find the section under "# Payment methods"
        heading = section if section == meta["title"] else f"{meta['title']}: {section}"
        indexed = f"{heading}\n{content}"
        doc_id = hashlib.sha1(f"{meta['source']}|{indexed}".encode()).hexdigest()
        result.append(Document(id=doc_id, content=indexed, meta=meta))
    return result


def build_index(
    docs_dir: Path = DOCS_DIR,
    index_path: Path | None = None,
    encoder: str | None = None,
    force: bool = False,
) -> dict:
    """Embed the documents and persist the store; skipped when nothing changed.

    Returns:
        Stats: ``documents``, ``sections``, ``rebuilt`` and ``seconds``.
    """
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
    )

    from components.model_prep import minilm_path

    index_path = Path(index_path or default_index_path())
    encoder = encoder or str(minilm_path())
    files = sorted(Path(docs_dir).glob("*.md"))
    fingerprint = _fingerprint(files, Path(encoder).name)
    meta_path = index_path.with_suffix(".meta.json")
    if not force and index_path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fingerprint:
            print(
                f"[kefu] knowledge index up to date ({meta['sections']} sections)", file=sys.stderr
            )
            return {**meta, "rebuilt": False}
    started = time.monotonic()
    documents = load_documents(Path(docs_dir))
    print(
        f"[kefu] indexing {len(files)} documents ({len(documents)} sections) ...",
        file=sys.stderr,
        flush=True,
    )
    embedder = SentenceTransformersDocumentEmbedder(
        model=encoder,
        local_files_only=True,
        normalize_embeddings=True,
        progress_bar=True,
    )
    embedder.warm_up()
    embedded = embedder.run(documents=documents)["documents"]
    store = InMemoryDocumentStore(
        bm25_algorithm=BM25_ALGORITHM, embedding_similarity_function="cosine"
    )
    store.write_documents(embedded)
    index_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = index_path.with_suffix(".partial")
    store.save_to_disk(str(tmp))
    tmp.replace(index_path)
    stats = {
        "fingerprint": fingerprint,
        "documents": len(files),
        "sections": len(embedded),
        "encoder": Path(encoder).name,
        "seconds": round(time.monotonic() - started, 2),
    }
    meta_path.write_text(json.dumps(stats, indent=1))
    print(f"[kefu] knowledge index written: {index_path}", file=sys.stderr)
    return {**stats, "rebuilt": True}
