"""Blind side-by-side of rephrasings: the base model vs the tuned one, order shuffled.

    .venv/bin/python benchmarks/side_by_side.py --out benchmarks/results/side_by_side

Writes ``sheet.md`` (for the judge: template, reply A, reply B and the fact checks of each,
nothing that says which model wrote which) and ``key.json`` (which of A/B is the tuned model,
per row). A judge scores each row with the rubric in the sheet; ``--score JUDGED.json`` then
unblinds a judgement file ``{"1": "A", "2": "tie", ...}`` against the key and prints the tally.

Templates and slot values are the NLG benchmark's (``benchmarks/llm.py``): held out from the
fine-tuning data. Both models decode greedily with the NLG's own prompt.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from common import offline_env

offline_env()

RUBRIC = """\
Rubric (judge each row without knowing which model wrote which reply):
1. A reply that fails a fact check (shown) loses: the NLG would not send it.
2. Between replies that pass: prefer the one that reads as a natural, friendly reply to a
   customer and says exactly what the template says (no new promises, no lost detail).
3. A reply identical to the template is acceptable but loses to a good rephrasing.
4. "tie" when neither is better (both fail, or both equally good).
"""


def generate(rows: int, seed: int) -> tuple[list[dict], dict[str, str]]:
    """Replies of both models for ``rows`` held-out templates; returns (sheet rows, key)."""
    from llm import ITEMS, TEMPLATES, _fill

    from components.llm.transformers_backend import TransformersBackend
    from components.nlg.fact_check import check_reply
    from components.nlg.prompt import clean_reply, rephrase_messages, reply_token_budget

    rng = random.Random(seed)
    names = list(TEMPLATES)
    cases = [_fill(TEMPLATES[names[i % len(names)]], rng, ITEMS) for i in range(rows)]
    models = {"base": TransformersBackend(adapter="none"), "tuned": TransformersBackend()}
    replies: dict[str, list[str]] = {}
    for label, backend in models.items():
        replies[label] = []
        for n, (template, _) in enumerate(cases, start=1):
            chat = rephrase_messages(template, [("Customer", "hi, can you help me?")])
            out = backend.generate(chat, max_new_tokens=reply_token_budget(template, 80))
            replies[label].append(clean_reply(out.text))
            if n % 10 == 0:
                print(f"[side-by-side] {label} {n}/{rows}", file=sys.stderr, flush=True)
    sheet, key = [], {}
    for i, (template, slots) in enumerate(cases):
        order = ["base", "tuned"]
        rng.shuffle(order)
        row = {"row": i + 1, "template": template}
        for side, label in zip("AB", order, strict=True):
            text = replies[label][i]
            failed = check_reply(template, text, list(slots.values()))
            row[side] = text
            row[f"{side}_checks"] = ", ".join(failed) if failed else "pass"
        key[str(i + 1)] = "A" if order[0] == "tuned" else "B"
        sheet.append(row)
    return sheet, key


def write_sheet(sheet: list[dict], path: Path) -> None:
    """The judge's sheet (markdown)."""
    lines = [
        RUBRIC,
        "| # | template | reply A | checks A | reply B | checks B |",
        "|---|---|---|---|---|---|",
    ]
    for row in sheet:
        cells = [
            str(row["row"]),
            row["template"],
            row["A"],
            row["A_checks"],
            row["B"],
            row["B_checks"],
        ]
        lines.append(
            "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def score(judged: dict[str, str], key: dict[str, str]) -> dict[str, int]:
    """Unblind: wins of the tuned model, of the base model, and ties."""
    tally = {"tuned": 0, "base": 0, "tie": 0}
    for row, verdict in judged.items():
        verdict = verdict.strip()
        if verdict.lower() == "tie":
            tally["tie"] += 1
        elif verdict in ("A", "B"):
            tally["tuned" if verdict == key[row] else "base"] += 1
        else:
            raise ValueError(f"row {row}: verdict {verdict!r} is not A, B or tie")
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/side_by_side"))
    parser.add_argument("--rows", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--score", type=Path, default=None, help="a judgement file to unblind")
    args = parser.parse_args()
    if args.score:
        key = json.loads((args.out / "key.json").read_text(encoding="utf-8"))
        tally = score(json.loads(args.score.read_text(encoding="utf-8")), key)
        print(json.dumps(tally))
        return 0
    if args.rows < 1:
        print("error: --rows must be at least 1", file=sys.stderr)
        return 2
    sheet, key = generate(args.rows, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_sheet(sheet, args.out / "sheet.md")
    (args.out / "key.json").write_text(json.dumps(key, indent=1) + "\n", encoding="utf-8")
    print(f"[side-by-side] wrote {args.out / 'sheet.md'} and the key", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
