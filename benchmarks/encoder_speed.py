"""Latency of one short message through the intent/entity model's encoder: e5 fp32 and int8, MiniLM.

    .venv/bin/python benchmarks/encoder_speed.py --json benchmarks/results/encoder_speed.json

An untrained head on each encoder (speed does not depend on training); five short zh/en
messages, one at a time, after a warm-up; torch on 2 threads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from common import offline_env, percentile, write_json

offline_env()

MESSAGES = [
    "我的订单KF100234到哪了",
    "运费多少",
    "我想退货，怎么办？",
    "where is my order KF100234",
    "发票怎么开",
]


def timed(classifier, rounds: int) -> dict:
    """p50/p95 milliseconds of ``classifier.predict`` on one message."""
    for text in MESSAGES:
        classifier.predict([text])
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        classifier.predict([MESSAGES[i % len(MESSAGES)]])
        times.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(percentile(times, 95), 1),
    }


def main() -> int:
    """Measure and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    import torch

    from components.model_prep import e5_path, minilm_path
    from components.nlu.joint_model import quantize_linear_layers
    from components.nlu.persistence import from_pretrained

    torch.set_num_threads(2)
    results = {}
    minilm = from_pretrained(minilm_path(), ["a", "b", "c"], ["order_id"], 64, 0.1, 1)
    results["all-MiniLM-L6-v2 fp32"] = timed(minilm, args.rounds)
    e5 = from_pretrained(e5_path(), ["a", "b", "c"], ["order_id"], 64, 0.1, 1)
    results["e5 + delta fp32"] = timed(e5, args.rounds)
    quantize_linear_layers(e5.model)
    results["e5 + delta int8 (default)"] = timed(e5, args.rounds)
    print("| encoder | p50 ms | p95 ms |\n|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['p50_ms']} | {r['p95_ms']} |")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
