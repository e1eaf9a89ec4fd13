"""English check of the multilingual encoder: dense-only FAQ retrieval on StackFAQ.

    .venv/bin/python benchmarks/stackfaq_dense.py --json benchmarks/results/stackfaq_dense_e5.json

Each query is matched to the FAQ questions by cosine alone (no BM25, no reranking), with
all-MiniLM-L6-v2 (Kefu's English encoder), multilingual-e5-small as released and Kefu's tuned e5
(``query: `` on both sides, and once with ``passage: `` on the FAQ side). It decides whether e5
could be the one encoder for both languages (issue 29): it is not, English keeps MiniLM.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import DATASETS, offline_env, read_jsonl, require_files, write_json

offline_env()

import numpy as np  # noqa: E402


def rank_all(model_path: Path, faq: list[dict], queries: list[dict], prefixes: tuple) -> dict:
    """MRR and P@1 of the right FAQ question over every query, with one encoder."""
    from sentence_transformers import SentenceTransformer

    started = time.monotonic()
    query_prefix, faq_prefix = prefixes
    model = SentenceTransformer(str(model_path), device="cpu")
    ids = [f["faq_id"] for f in faq]
    questions = model.encode([faq_prefix + f["question"] for f in faq], normalize_embeddings=True)
    asked = model.encode([query_prefix + q["query"] for q in queries], normalize_embeddings=True)
    scores = asked @ questions.T
    ranks = []
    for i, q in enumerate(queries):
        order = [ids[j] for j in np.argsort(-scores[i])]
        ranks.append(order.index(q["faq_id"]) + 1)
    return {
        "mrr": round(float(np.mean([1 / r for r in ranks])), 4),
        "p@1": round(sum(r == 1 for r in ranks) / len(ranks), 4),
        "seconds": round(time.monotonic() - started, 1),
    }


def main() -> int:
    """Run every encoder on StackFAQ and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faq", type=Path, default=DATASETS / "stackfaq" / "faq.jsonl")
    parser.add_argument("--queries", type=Path, default=DATASETS / "stackfaq" / "queries.jsonl")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    if not require_files([args.faq, args.queries]):
        return 2
    from components.model_prep import e5_base_path, e5_path, minilm_path

    faq, queries = read_jsonl(args.faq), read_jsonl(args.queries)
    runs = {
        "all-MiniLM-L6-v2 (English default)": (minilm_path(), ("", "")),
        "e5 untuned": (e5_base_path(), ("query: ", "query: ")),
        "e5 + Kefu delta": (e5_path(), ("query: ", "query: ")),
        "e5 untuned, passage: on the FAQ side": (e5_base_path(), ("query: ", "passage: ")),
    }
    results = {}
    print("| encoder | MRR | P@1 |\n|---|---|---|")
    for name, (path, prefixes) in runs.items():
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        results[name] = r = rank_all(path, faq, queries, prefixes)
        print(f"| {name} | {r['mrr']:.3f} | {r['p@1']:.3f} |", flush=True)
    write_json(args.json, {"queries": len(queries), "faq": len(faq), "encoders": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
