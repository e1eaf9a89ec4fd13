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
from components.nlg.fact_check import check_reply
from components.nlg.prompt import clean_reply, reply_token_budget, template_of
from training.llm.data import DECLINE, Example


def task_metrics(
    backend: LLMBackend, examples: Sequence[Example], progress: bool = True
) -> dict[str, Any]:
    """Generate a reply for every example (greedy) and score it as the product would."""
    from knowledge.answering import AnswerComposer, is_decline, passages_of

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
            template = template_of(prompt)
            out = backend.generate(prompt, max_new_tokens=reply_token_budget(template, 80))
            text = clean_reply(out.text)
            counts["rephrase"] += 1
            counts["rephrase_accepted_and_different"] += (
                not check_reply(template, text) and text != template
            )
        elif example.task == "grounded":
            out = backend.generate(prompt, max_new_tokens=80)
            if example.messages[-1]["content"] == DECLINE:
                counts["unanswerable"] += 1
                counts["unanswerable_declined"] += is_decline(out.text)
            else:
                counts["answerable"] += 1
                _, reason = composer.check(out.text.strip(), passages_of(prompt))
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
