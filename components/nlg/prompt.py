"""The chat prompt of a rephrasing — one definition for the NLG and for fine-tuning data.

:class:`~components.nlg.rephrasing.RephrasingNLG` builds its prompt here, and so does the
fine-tuning data builder (:mod:`training.llm.data`): a model tuned on these messages
sees at run time exactly what it was trained on. No Rasa imports: the builder runs without it.
"""

from __future__ import annotations

from collections.abc import Sequence

from components.text import CJK

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
# what precedes the template in the user message (rephrase_messages, template_of)
TEMPLATE_HEADING = "Reply to rewrite:\n"


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
    user = f"{context}{TEMPLATE_HEADING}{template}"
    system = SYSTEM_PROMPT + (EMPATHY if tone == "empathetic" else "")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def template_of(messages: Sequence[dict[str, str]]) -> str:
    """The template a chat from :func:`rephrase_messages` asks to rephrase (its inverse)."""
    user = next(m["content"] for m in messages if m["role"] == "user")
    return user.split(TEMPLATE_HEADING, 1)[-1]


def clean_reply(text: str) -> str:
    """A generated rephrasing as the NLG checks and sends it: trimmed, outer quotes dropped."""
    return text.strip().strip('"').strip()


def reply_token_budget(template: str, cap: int) -> int:
    """New tokens allowed for a rephrasing of ``template``: its length plus an opening.

    At most ``cap``: a rephrasing is about as long as its template, so the model may not ramble.

    Digits and Chinese characters take a token or more each in SmolLM2's vocabulary, so the
    budget counts characters, not words.
    """
    return min(cap, len(template) // 2 + len(CJK.findall(template)) + 24)
