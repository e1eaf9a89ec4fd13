"""Knowledge-base command line.

python -m knowledge build [--docs DIR] [--index FILE] [--force]
python -m knowledge ask "how long do refunds take?"
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from components.errors import KefuError


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    parser = argparse.ArgumentParser(prog="python -m knowledge", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="embed the documents and save the index (if changed)")
    build.add_argument("--docs", type=Path, default=None, help="folder of Markdown documents")
    build.add_argument("--index", type=Path, default=None, help="index file to write")
    build.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    ask = sub.add_parser("ask", help="answer one question from the index")
    ask.add_argument("question")
    ask.add_argument("--index", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            from knowledge.index import DOCS_DIR, build_index

            stats = build_index(args.docs or DOCS_DIR, args.index, force=args.force)
            print(f"{stats['sections']} sections from {stats['documents']} documents")
        else:
            from knowledge.retrieval import KnowledgeBase

            answer = KnowledgeBase(args.index).answer(args.question)
            if answer.found:
                print(
                    f"{answer.text}\n\nSource: {answer.title} ({answer.source}) "
                    f"score={answer.score:.2f}"
                )
            else:
                print(f"No relevant passage (best similarity {answer.score:.2f}).")
    except KefuError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
