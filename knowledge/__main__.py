"""Knowledge-base command line.

python -m knowledge build                      sync the assistant's documents (add/update/prune)
python -m knowledge ingest PATH [PATH ...]     add or update files/folders (md, html, pdf,
                                               txt, FAQ csv/jsonl); unchanged files are skipped
python -m knowledge remove SOURCE              delete a source (file name or path)
python -m knowledge list | stats               what is indexed
python -m knowledge ask "QUESTION"             answer one question from the index

The index lives in KEFU_HOME/knowledge_index.<assistant>.json (KEFU_ASSISTANT, default shop;
its documents are knowledge/docs/<assistant>), or with --store pgvector (or
KEFU_KB_STORE=pgvector) in PostgreSQL: connection string in PG_CONN_STR, table KEFU_KB_TABLE
(default: kefu.knowledge.table), KEFU_KB_SEARCH=hnsw for approximate search on large indexes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from components.errors import KefuError

if TYPE_CHECKING:
    from components.settings import KnowledgeSettings


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (1 when some files failed, 2 on errors)."""
    from components.settings import STORE_KINDS

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    parser = argparse.ArgumentParser(
        prog="python -m knowledge",
        description="Manage and query Kefu's knowledge index.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument(
        "--index", type=Path, default=None, help="index file (default: in KEFU_HOME)"
    )
    parser.add_argument(
        "--store",
        choices=STORE_KINDS,
        default=None,
        help="where the index lives (default: kefu.knowledge.store / $KEFU_KB_STORE)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="sync the assistant's documents folder")
    build.add_argument(
        "--docs",
        type=Path,
        default=None,
        help="folder of documents (default: kefu.knowledge.docs, else the assistant's)",
    )
    ingest = sub.add_parser("ingest", help="add or update files and folders")
    ingest.add_argument("paths", nargs="+", type=Path)
    ingest.add_argument("--prune", action="store_true", help="drop sources deleted from folders")
    remove = sub.add_parser("remove", help="delete a source")
    remove.add_argument("source")
    sub.add_parser("list", help="indexed sources")
    sub.add_parser("stats", help="index totals")
    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    args = parser.parse_args(argv)
    if args.store == "pgvector" and args.index:
        parser.error("--index names the embedded store's file; not with --store pgvector")

    from knowledge.index import KnowledgeIndex, build_index
    from knowledge.stores import store_from_settings

    try:
        config = _settings(args.store, args.index)
        store = store_from_settings(config)
        index = KnowledgeIndex(config, store)
        if args.command in ("build", "ingest"):
            if args.command == "build":
                report = build_index(args.docs or Path(config.docs), config, store)
            else:
                missing = [str(p) for p in args.paths if not p.exists()]
                if missing:
                    print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
                    return 2
                report = index.ingest(args.paths, prune=args.prune)
            for name, error in report.failed.items():
                print(f"skipped {name}: {error}", file=sys.stderr)
            print(report.summary())
            return 1 if report.failed else 0
        if args.command == "remove":
            print(f"removed {', '.join(index.remove(args.source))}")
        elif args.command == "list":
            for item in index.sources():
                print(f"{item['name']}\t{item['sections']} sections\tupdated {item['updated_at']}")
        elif args.command == "stats":
            print(json.dumps(index.stats(), indent=1))
        else:
            from knowledge.retrieval import KnowledgeBase

            answer = KnowledgeBase(config, store).answer(args.question)
            if answer.found:
                print(
                    f"{answer.text}\n\nSource: {answer.title} — {answer.section} ({answer.source}) "
                    f"similarity={answer.score:.2f}"
                )
            else:
                print(f"No relevant passage (best similarity {answer.score:.2f}).")
    except KefuError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _settings(kind: str | None, index: Path | None) -> KnowledgeSettings:
    """The ``kefu.knowledge`` settings with ``--store`` / ``--index`` applied, paths resolved.

    ``--index`` names the embedded store's file (so the memory store); ``--store`` the kind;
    neither: the settings' own, and the process's assistant's documents and index file.

    Raises:
        ConfigError: for a bad setting (names the key or the variable).
    """
    from dataclasses import replace

    from components.settings import load_settings

    config = load_settings().knowledge
    if index is not None:
        config = replace(config, store="memory", index_path=str(index))
    elif kind:
        config = replace(config, store=kind)
    return config.resolved()


if __name__ == "__main__":
    sys.exit(main())
