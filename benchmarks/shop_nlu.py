"""The demo shop's own NLU on held-back examples: intent accuracy and order-id extraction.

    .venv/bin/python benchmarks/shop_nlu.py --model models/shop/  [--test FILE.yml ...] [--json OUT]

Parses every example of the held-back files (Rasa NLU YAML, never in ``training_data/``:
``benchmarks/data/nlu_zh_holdout.yml`` written with the Chinese training data, before any tuning;
``tests/assistants/shop/test_nlu.yml``) with a trained assistant model (the newest in ``--model``,
or a ``.tar.gz``) and reports, per file: intent accuracy, the intents it confused, and order-id
extraction — the share of annotated order ids the model extracted as an ``order_id`` entity whose
normalised value (``KF`` + six digits, see ``actions/shop/orders.py``) is the annotated one. Also
the parse latency (p50/p95) and the language the NLU gave each message.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

from common import ROOT, offline_env, percentile, require_files, write_json

offline_env()

DEFAULT_TESTS = [
    ROOT / "benchmarks" / "data" / "nlu_zh_holdout.yml",
    ROOT / "tests" / "assistants" / "shop" / "test_nlu.yml",
]


def newest_model(path: Path) -> Path:
    """``path`` itself when it is a file, else the newest ``.tar.gz`` in it."""
    if path.is_file():
        return path
    models = sorted(path.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise SystemExit(f"error: no trained model in {path} (run `make train`)")
    return models[-1]


async def evaluate(model: Path, tests: list[Path]) -> dict:
    """Parse every held-back example; per-file figures."""
    from rasa.core.agent import Agent
    from rasa.shared.nlu.training_data.loading import load_data

    from actions.shop.orders import normalize_order_id

    agent = Agent.load(str(model))
    results: dict = {"model": model.name, "files": {}}
    for path in tests:
        data = load_data(str(path))
        correct, confusions, latency = 0, Counter(), []
        ids, ids_found, languages = 0, 0, Counter()
        misses = []
        for example in data.intent_examples:
            text = example.get("text")
            started = time.perf_counter()
            parsed = await agent.parse_message(text)
            latency.append((time.perf_counter() - started) * 1000)
            predicted = (parsed.get("intent") or {}).get("name")
            gold = example.get("intent")
            languages[str(parsed.get("language"))] += 1
            if predicted == gold:
                correct += 1
            else:
                confusions[f"{gold} -> {predicted}"] += 1
                misses.append({"text": text, "gold": gold, "predicted": predicted})
            extracted = {
                normalize_order_id(str(e.get("value")))
                for e in parsed.get("entities", [])
                if e.get("entity") == "order_id"
            }
            for entity in example.get("entities") or []:
                if entity.get("entity") != "order_id":
                    continue
                ids += 1
                if normalize_order_id(str(entity.get("value"))) in extracted:
                    ids_found += 1
                else:
                    misses.append({"text": text, "order_id_missed": entity.get("value")})
        n = len(data.intent_examples) or 1
        results["files"][path.name] = {
            "examples": len(data.intent_examples),
            "intent_accuracy": round(correct / n, 4),
            "order_ids": ids,
            "order_id_extraction": round(ids_found / ids, 4) if ids else None,
            "confusions": dict(confusions.most_common()),
            "languages": dict(languages),
            "parse_ms_p50": round(percentile(latency, 50), 1),
            "parse_ms_p95": round(percentile(latency, 95), 1),
            "misses": misses,
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "shop")
    parser.add_argument("--test", type=Path, action="append", default=None, help="repeatable")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    tests = args.test or DEFAULT_TESTS
    if not require_files(tests):
        return 2
    print("[bench] parsing held-back examples ...", file=sys.stderr, flush=True)
    results = asyncio.run(evaluate(newest_model(args.model), tests))
    print(f"\nShop NLU, held-back examples (model {results['model']})")
    print("| file | examples | intent accuracy | order ids | extracted | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results["files"].items():
        extraction = "-" if r["order_id_extraction"] is None else f"{r['order_id_extraction']:.3f}"
        print(
            f"| {name} | {r['examples']} | {r['intent_accuracy']:.3f} | {r['order_ids']} | "
            f"{extraction} | {r['parse_ms_p50']} | {r['parse_ms_p95']} |"
        )
        for confusion, count in r["confusions"].items():
            print(f"  confused {confusion}: {count}")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
