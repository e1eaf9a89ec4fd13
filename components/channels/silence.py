"""The silence guard: what to say when a turn produced no reply, and whether to hand off.

When the action server is down or times out, Rasa logs the exception, drops the action's events
and carries on: the customer gets no reply at all. The channel then answers with an apology in
the customer's language and, when the turn ended in a custom action that said nothing (the
action that failed), queues a handoff so that a human follows up. Only the apology that follows
a queued handoff promises a human. When the failure hit a form (the action server could not
validate the customer's answer), the adapter stops the form and the apology says so: the
customer starts again rather than having the next message taken as the stale form's answer.

The turn is described with :class:`Step` values so that this module needs nothing from Rasa;
the adapter converts the tracker's events after the user's message.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from components.text import customer_language

UTTER_PREFIX = "utter_"
ACTION_LISTEN = "action_listen"
#: Default actions after which no reply is expected (the user restarted or went back).
QUIET_ACTIONS = frozenset({"action_restart", "action_back", "action_session_start"})

APOLOGIES: dict[tuple[str, bool], str] = {
    ("en", True): (
        "Sorry, something went wrong on our side and I couldn't finish that. "
        "A human colleague will follow up."
    ),
    ("zh", True): "抱歉，我们这边出了点问题，暂时无法完成。人工客服会尽快联系您。",
    ("en", False): (
        "Sorry, something went wrong on our side and I couldn't answer that. "
        "Please try again in a moment."
    ),
    ("zh", False): "抱歉，我们这边出了点问题，暂时无法回复。请稍后再试。",
}
#: The apologies when the failure stopped a form (the customer's last answer was not taken).
FORM_STOPPED_APOLOGIES: dict[tuple[str, bool], str] = {
    ("en", True): (
        "Sorry, something went wrong on our side, so I had to stop what we were doing. "
        "A human colleague will follow up, or you can start again in a moment."
    ),
    ("zh", True): (
        "抱歉，我们这边出了点问题，刚才的办理已中止。人工客服会尽快联系您，您也可以稍后重新开始。"
    ),
    ("en", False): (
        "Sorry, something went wrong on our side, so I had to stop what we were doing. "
        "Please start again in a moment."
    ),
    ("zh", False): "抱歉，我们这边出了点问题，刚才的办理已中止，请稍后重新开始。",
}


@dataclass(frozen=True)
class Step:
    """One event of a turn, as far as the guard cares.

    Attributes:
        kind: ``action`` (an action was executed), ``bot`` (a bot message) or ``restart``.
        name: The action's name for ``action`` steps.
    """

    kind: str
    name: str = ""


def reply_language(message: str, conversation: str | None = None) -> str:
    """``zh`` when the customer wrote Chinese, ``en`` for English.

    A message without words (an order number, a button) keeps the ``conversation``'s language
    (the ``language`` slot).
    """
    language = customer_language(message) or conversation
    return "zh" if language == "zh" else "en"


def apology(language: str, *, handoff: bool, form_stopped: bool = False) -> str:
    """The apology for a silent turn; only with ``handoff`` does it promise a human.

    Args:
        language: ``zh`` or ``en``.
        handoff: A handoff was queued.
        form_stopped: The failure stopped a form (the customer has to start it again).
    """
    texts = FORM_STOPPED_APOLOGIES if form_stopped else APOLOGIES
    return texts[("zh" if language == "zh" else "en", handoff)]


def is_custom_action(name: str, builtin_actions: Collection[str]) -> bool:
    """Whether ``name`` is an action of the project (runs on the action server)."""
    return bool(name) and not name.startswith(UTTER_PREFIX) and name not in builtin_actions


def _last_action(turn: Sequence[Step]) -> int | None:
    for index in range(len(turn) - 1, -1, -1):
        if turn[index].kind == "action" and turn[index].name != ACTION_LISTEN:
            return index
    return None


def is_quiet_turn(turn: Sequence[Step]) -> bool:
    """Whether silence is the expected outcome (the user restarted or went back)."""
    if any(step.kind == "restart" for step in turn):
        return True
    index = _last_action(turn)
    return index is not None and turn[index].name in QUIET_ACTIONS


def failed_custom_action(turn: Sequence[Step], builtin_actions: Collection[str]) -> str | None:
    """The custom action that ended the turn without a bot message after it, if any.

    Args:
        turn: The turn's steps, after the user's message, in order.
        builtin_actions: Rasa's default action names (``action_listen`` among them).

    Returns:
        The action's name, or None when the last action predicted in the turn was a response
        (``utter_*``) or a Rasa default action, or a bot message followed it.
    """
    index = _last_action(turn)
    if index is None or not is_custom_action(turn[index].name, builtin_actions):
        return None
    if any(step.kind == "bot" for step in turn[index + 1 :]):
        return None
    return turn[index].name
