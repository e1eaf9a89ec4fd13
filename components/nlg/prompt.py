"""The chat prompt of a rephrasing — one definition for the NLG and for fine-tuning data.

:class:`~components.nlg.rephrasing.RephrasingNLG` builds its prompt here, and so does the
fine-tuning data builder (:mod:`components.llm.finetune.data`): a model tuned on these messages
sees at run time exactly what it was trained on. No Rasa imports: the builder runs without it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SYSTEM_PROMPT = (
    "You rewrite replies of a shop's customer-service assistant so they sound natural and "
    "friendly in the conversation. Keep every number, name, order number and link exactly "
    "as written. Do not add any information. Answer with the rewritten reply only."
)
EMPATHY = (
    " The customer is upset: begin with one short sentence that acknowledges their frustration "
    "and apologises, then give the reply."
)
# characters of one earlier turn shown to the model
TURN_CHARS = 300


def rephrase_messages(
    template: str, history: Sequence[tuple[str, str]] = (), tone: str = "neutral"
) -> list[dict[str, str]]:
    """Chat messages asking the LLM to rephrase ``template``.

    Args:
        template: The filled response text to rephrase.
        history: Earlier turns, oldest first, as ``("Customer" | "Assistant", text)``; the
            texts must already be masked (personal data never goes into a prompt).
        tone: ``neutral`` or ``empathetic`` (the customer is upset).

    Returns:
        A system and a user message.
    """
    turns = "\n".join(f"{who}: {text[:TURN_CHARS]}" for who, text in history)
    context = f"Conversation so far:\n{turns}\n\n" if turns else ""
    user = f"{context}Reply to rewrite:\n{template}"
    system = SYSTEM_PROMPT + (EMPATHY if tone == "empathetic" else "")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def reply_token_budget(template: str, cap: int) -> int:
    """New tokens allowed for a rephrasing of ``template``: its length plus an opening.

    At most ``cap``: a rephrasing is about as long as its template, so the model may not ramble.

    Digits and Chinese characters take a token or more each in SmolLM2's vocabulary, so the
    budget counts characters, not words.
    """
    return min(cap, len(template) // 2 + len(_CJK.findall(template)) + 24)
