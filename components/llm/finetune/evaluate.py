"""Task metrics of a model on held-back examples: what the NLG and the composer would accept.

* ``rephrase``: the generated reply passes the NLG's checks
  (:func:`~components.nlg.fact_check.check_rephrase` and ``check_tone``) against the template
  (the user message's last block) and differs from it.
* ``grounded`` (answerable): the reply passes :meth:`knowledge.answering.AnswerComposer.check`;
  (unanswerable, the reference is ``I don't know.``): the reply declines.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from components.llm.base import LLMBackend
from components.llm.finetune.data import DECLINE, Example
from components.nlg.fact_check import check_rephrase, check_tone
from components.nlg.prompt import reply_token_budget

TEMPLATE_MARK = "Reply to rewrite:\n"


def template_of(example: Example) -> str:
    """The template of a rephrase example (what follows ``Reply to rewrite:``)."""
    return example.messages[-2]["content"].split(TEMPLATE_MARK, 1)[-1]


def passages_of(example: Example) -> list[str]:
    """The numbered passages shown in a grounded example, in order."""
    import re

    body = example.messages[-2]["content"].split("Passages:\n", 1)[-1].rsplit("\n\nQuestion:", 1)[0]
    return [p.strip() for p in re.split(r"(?m)^\[\d+\] ", body) if p.strip()]


def task_metrics(
    backend: LLMBackend, examples: Sequence[Example], progress: bool = True
) -> dict[str, Any]:
    """Generate a reply for every example (greedy) and score it as the product would."""
    from knowledge.answering import AnswerComposer, is_decline

    composer = AnswerComposer()
    counts = {
        "rephrase": 0, "rephrase_accepted_and_different": 0,
        "answerable": 0, "answerable_accepted": 0,
        "unanswerable": 0, "unanswerable_declined": 0,
    }  # fmt: skip
    latencies: list[float] = []
    for n, example in enumerate(examples, start=1):
        prompt = example.messages[:-1]
        if example.task == "rephrase":
            template = template_of(example)
            out = backend.generate(prompt, max_new_tokens=reply_token_budget(template, 80))
            text = out.text.strip().strip('"').strip()
            counts["rephrase"] += 1
            counts["rephrase_accepted_and_different"] += (
                not check_rephrase(template, text) + check_tone(template, text) and text != template
            )
        elif example.task == "grounded":
            out = backend.generate(prompt, max_new_tokens=80)
            if example.messages[-1]["content"] == DECLINE:
                counts["unanswerable"] += 1
                counts["unanswerable_declined"] += is_decline(out.text)
            else:
                counts["answerable"] += 1
                _, reason = composer.check(out.text.strip(), passages_of(example))
                counts["answerable_accepted"] += not reason
        else:
            continue
        latencies.append(out.latency_s)
        if progress and n % 20 == 0:
            print(f"[finetune] evaluated {n}/{len(examples)}", file=sys.stderr, flush=True)

    def share(part: str, whole: str) -> float | None:
        return round(counts[part] / counts[whole], 4) if counts[whole] else None

    return {
        **counts,
        "rephrase_accepted_and_different_share": share(
            "rephrase_accepted_and_different", "rephrase"
        ),
        "answerable_accepted_share": share("answerable_accepted", "answerable"),
        "unanswerable_declined_share": share("unanswerable_declined", "unanswerable"),
        "mean_latency_s": round(sum(latencies) / len(latencies), 3) if latencies else None,
    }
