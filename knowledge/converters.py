"""Turn files into sections (Haystack ``Document``s) ready for indexing.

Supported: Markdown, HTML, PDF, plain text, and FAQ files (CSV or JSONL with question and
answer fields; a file in which no row has an answer is a list of standard questions, each its
own text). Every section carries ``source``, ``title``, ``section``, ``updated_at``,
``lang``, ``kind`` (``doc``/``faq``) and ``body`` (the text the assistant quotes). Sections longer
than ``max_chars`` are split at sentence ends, Chinese (。！？；) as well as English.
"""

from __future__ import annotations

import csv
import datetime as dt
import html.parser
import json
import re
from pathlib import Path

from haystack import Document

from components.errors import KnowledgeBaseError
from components.text import SENTENCE_END, language_of

SUPPORTED = {".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".csv", ".jsonl"}
MAX_CHARS = 900
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_NO_SPACE_AFTER = ("\n", "。", "！", "？", "；")


class UnsupportedFileError(KnowledgeBaseError):
    """A file the ingester cannot read (wrong type, broken content, bad FAQ rows)."""


def clean(text: str) -> str:
    """Normalise whitespace: trim lines, collapse runs of spaces and blank lines."""
    lines = [re.sub(r"[ \t\u3000]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def split_sentences(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """Split ``text`` into chunks of at most ``max_chars`` at sentence ends (zh and en)."""
    if len(text) <= max_chars:
        return [text]
    chunks, current = [], ""
    for sentence in (s for s in SENTENCE_END.split(text) if s.strip()):
        if current and len(current) + len(sentence) + 1 > max_chars:
            chunks.append(current.strip())
            current = ""
        joiner = "" if not current or current.endswith(_NO_SPACE_AFTER) else " "
        current += joiner + sentence
        while len(current) > max_chars:  # one enormous sentence
            chunks.append(current[:max_chars].strip())
            current = current[max_chars:]
    if current.strip():
        chunks.append(current.strip())
    return chunks


def _updated_at(path: Path) -> str:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc).isoformat(
        timespec="seconds"
    )


def _sections_from_markdown(text: str, fallback_title: str) -> tuple[str, list[tuple[str, str]]]:
    """(title, [(section heading, body)]) from Markdown-like text."""
    title, sections = fallback_title, []
    heading, body = None, []

    def flush() -> None:
        content = clean("\n".join(body))
        if content:
            sections.append((heading or title, content))

    for line in text.splitlines():
        match = _HEADING.match(line.strip())
        if match:
            flush()
            body = []
            level, name = len(match.group(1)), match.group(2).strip()
            if level == 1 and not sections and heading is None:
                title = name
            heading = name
        else:
            body.append(line)
    flush()
    return title, sections


class _HTMLText(html.parser.HTMLParser):
    """HTML -> Markdown-like text: headings become ``#`` lines, scripts/styles are dropped."""

    BLOCKS = {"p", "div", "li", "br", "tr", "section", "article", "table", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style", "nav", "footer", "header", "noscript"):
            self.skip += 1
        elif tag == "title":
            self._in_title = True
        elif re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n" + "#" * int(tag[1]) + " ")
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "nav", "footer", "header", "noscript"):
            self.skip = max(0, self.skip - 1)
        elif tag == "title":
            self._in_title = False
        elif re.fullmatch(r"h[1-6]", tag) or tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data.strip()
        elif not self.skip:
            self.parts.append(data)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UnsupportedFileError(f"{path.name} is not UTF-8 text", path=str(path)) from exc


def _faq_rows(path: Path) -> list[tuple[str, str, str]]:
    """(question, answer, id) triples from a CSV (header row) or JSONL FAQ file."""
    rows: list[dict] = []
    if path.suffix == ".csv":
        rows = list(csv.DictReader(_read_text(path).splitlines()))
    else:
        for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UnsupportedFileError(
                    f"{path.name}:{lineno} is not valid JSON", path=str(path)
                ) from exc
    entries = []
    for number, row in enumerate(rows, start=1):
        lowered = {str(k).lower(): v for k, v in row.items()}
        question = lowered.get("question") or lowered.get("q")
        answer = lowered.get("answer") or lowered.get("a") or lowered.get("answers")
        if isinstance(answer, list):
            answer = "\n".join(str(a) for a in answer[:1])  # the accepted (first) answer
        if not question:
            raise UnsupportedFileError(
                f"{path.name} row {number} has no 'question' field",
                hint="FAQ files are CSV with a header or JSONL with question (and answer) keys",
                path=str(path),
            )
        row_id = str(lowered.get("faq_id") or lowered.get("id") or number)
        entries.append((clean(str(question)), clean(str(answer)) if answer else "", row_id))
    missing = [i for i, (_, answer, _) in enumerate(entries, start=1) if not answer]
    if 0 < len(missing) < len(entries):  # some rows answered: a missing answer is a slip
        raise UnsupportedFileError(
            f"{path.name} row {missing[0]} has no 'answer' (other rows have one)",
            hint="give every row an answer, or none: a question-only file lists standard "
            "questions, each matched and quoted as its own text",
            path=str(path),
        )
    # a question-only file (no row has an answer: a list of standard questions, as in a
    # question-matching FAQ) indexes each question as its own text
    return [(question, answer or question, row_id) for question, answer, row_id in entries]


def convert_file(path: Path, max_chars: int = MAX_CHARS) -> list[Document]:
    """Read one file into section documents.

    Raises:
        UnsupportedFileError: for an unknown extension or unreadable content (the ingester
            reports it and carries on with the other files).
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise UnsupportedFileError(
            f"{path.name}: unsupported file type '{suffix}'",
            hint=f"use one of {sorted(SUPPORTED)}",
            path=str(path),
        )
    base = {"source": path.name, "updated_at": _updated_at(path)}
    if suffix in (".csv", ".jsonl"):
        docs = []
        for question, answer, row_id in _faq_rows(path):
            meta = {
                **base,
                "title": path.stem,
                "section": question,
                "kind": "faq",
                "faq_id": row_id,
            }
            indexed = question if answer == question else f"{question}\n{answer}"
            docs.append(_document(indexed, answer, meta, question))
        return docs
    if suffix == ".pdf":
        title, sections = _pdf_sections(path)
    elif suffix in (".html", ".htm"):
        parser = _HTMLText()
        parser.feed(_read_text(path))
        title, sections = _sections_from_markdown("".join(parser.parts), parser.title or path.stem)
        title = parser.title or title
    else:  # markdown and text (a text file's paragraphs stay under its name)
        title, sections = _sections_from_markdown(_read_text(path), path.stem)
    if not sections:
        raise UnsupportedFileError(f"{path.name} has no text", path=str(path))
    docs = []
    # one language per document (a Chinese policy naming "PayPal" in one section is still
    # Chinese): the name's tag (returns.zh.md) or the language of the whole text
    lang = _file_language(path, " ".join(f"{title} {h} {b}" for h, b in sections))
    for heading, body in sections:
        label = heading if heading == title else f"{title}: {heading}"
        for chunk in split_sentences(body, max_chars):
            meta = {**base, "title": title, "section": heading, "kind": "doc", "lang": lang}
            docs.append(_document(f"{label}\n{chunk}", chunk, meta))
    return docs


def _file_language(path: Path, text: str) -> str:
    """``zh``/``en`` from a language tag in the file name (``returns.zh.md``), else the text's."""
    tag = Path(path.stem).suffix.lower().lstrip(".")
    if tag in ("zh", "en"):
        return tag
    return language_of(text)


def _pdf_sections(path: Path) -> tuple[str, list[tuple[str, str]]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [clean(page.extract_text() or "") for page in reader.pages]
    except (PdfReadError, OSError, ValueError) as exc:
        raise UnsupportedFileError(f"{path.name} is not a readable PDF", path=str(path)) from exc
    title = (reader.metadata.title if reader.metadata else None) or path.stem
    return title, [(f"page {i}", text) for i, text in enumerate(pages, start=1) if text]


def _document(indexed: str, body: str, meta: dict, faq_question: str | None = None) -> Document:
    # the heading is part of what is searched (BM25 reads content only), the body is quoted
    meta = {"lang": language_of(body), **meta, "body": body}
    if faq_question:
        meta["faq_question"] = faq_question
    return Document(content=indexed, meta=meta)
