"""Kefu's error catalogue.

Every exception Kefu raises on purpose is a :class:`KefuError` with a stable ``code``, the
fields that explain it and a ``hint`` that says what to do. HTTP edges (the action server,
the NLG) translate these into user-facing messages through :data:`USER_MESSAGES` so that a
customer never sees a stack trace and an operator can grep logs by code.
"""

from __future__ import annotations

from typing import Any

#: Messages safe to show to an end user, by error code.
USER_MESSAGES: dict[str, str] = {
    "KEFU-CONFIG": "The assistant is misconfigured. Please try again later.",
    "KEFU-MODEL": "The assistant's language model is unavailable. Please try again later.",
    "KEFU-LLM": "I could not phrase a reply just now.",
    "KEFU-KB": "I can't reach the knowledge base right now. Would you like to talk to a human?",
    "KEFU-ORDERS": "I can't look up orders right now. Would you like to talk to a human?",
    "KEFU-TICKETS": "I couldn't create a ticket just now. Please try again in a minute.",
    "KEFU-SETUP": "The assistant has not been set up. Run `make setup`.",
}
#: The same messages for Chinese-speaking customers (the edge picks by the customer's language).
USER_MESSAGES_ZH: dict[str, str] = {
    "KEFU-CONFIG": "客服系统配置有误，请稍后再试。",
    "KEFU-MODEL": "客服的语言模型暂时不可用，请稍后再试。",
    "KEFU-LLM": "我暂时没能组织好回复。",
    "KEFU-KB": "暂时无法访问知识库。需要为您转接人工客服吗？",
    "KEFU-ORDERS": "暂时无法查询订单。需要为您转接人工客服吗？",
    "KEFU-TICKETS": "暂时无法创建工单，请过一分钟再试。",
    "KEFU-SETUP": "客服系统尚未完成配置。",
}
_FALLBACK_MESSAGE = {
    "en": "Something went wrong. Please try again.",
    "zh": "出了点问题，请再试一次。",
}


class KefuError(Exception):
    """Base class for Kefu's deliberate errors.

    Args:
        message: What went wrong, for operators (never contains raw user text).
        hint: What to do about it.
        **fields: Structured context (config key, path, value, ...) kept on ``self.fields``.
    """

    code = "KEFU"

    def __init__(self, message: str, *, hint: str | None = None, **fields: Any) -> None:
        self.message = message
        self.hint = hint
        self.fields = fields
        text = f"[{self.code}] {message}"
        if hint:
            text += f" — {hint}"
        super().__init__(text)

    @property
    def user_message(self) -> str:
        """The catalogue message for this error's code, safe to show to a customer."""
        return self.user_message_in("en")

    def user_message_in(self, language: str) -> str:
        """The catalogue message in the customer's ``language`` (``zh``; anything else: en)."""
        if language == "zh":
            return USER_MESSAGES_ZH.get(self.code, _FALLBACK_MESSAGE["zh"])
        return USER_MESSAGES.get(self.code, _FALLBACK_MESSAGE["en"])


class ConfigError(KefuError, ValueError):
    """A component, backend or store was given a bad configuration value."""

    code = "KEFU-CONFIG"

    def __init__(self, key: str, value: Any, expected: str, *, component: str = "") -> None:
        where = f"{component}: " if component else ""
        super().__init__(
            f"{where}invalid value {value!r} for '{key}'",
            hint=f"expected {expected}",
            key=key,
            value=value,
            component=component,
        )


def check_number(
    key: str,
    value: Any,
    low: float,
    high: float = float("inf"),
    expected: str | None = None,
    *,
    component: str = "",
) -> float:
    """``value`` when it is a number (not a bool) from ``low`` to ``high``; else ConfigError.

    Args:
        key: The configuration key named in the error.
        value: The configured value.
        low: Smallest allowed value.
        high: Largest allowed value.
        expected: What the error says is expected (default: "a number from LOW to HIGH").
        component: The component named in the error.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        expected = expected or f"a number from {low:g} to {high:g}"
        raise ConfigError(key, value, expected, component=component)
    return value


def check_int(key: str, value: Any, minimum: int, *, component: str = "") -> int:
    """``value`` when it is an integer (not a bool) >= ``minimum``; else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, value, f"an integer >= {minimum}", component=component)
    return value


class ModelNotFoundError(KefuError, FileNotFoundError):
    """A model path or packaged model could not be found."""

    code = "KEFU-MODEL"


class LLMError(KefuError):
    """An LLM backend failed to produce text."""

    code = "KEFU-LLM"


class LLMTimeoutError(LLMError, TimeoutError):
    """An LLM call did not finish within its deadline."""


class LLMBusyError(LLMTimeoutError):
    """The calls already waiting for the LLM would use up this call's deadline: not queued."""


class LLMUnavailableError(LLMError):
    """The LLM server is known to be down (circuit open): the call was not even tried."""


class KnowledgeBaseError(KefuError):
    """The knowledge index is missing, corrupt or cannot be queried."""

    code = "KEFU-KB"


class OrderStoreError(KefuError):
    """The order database cannot be read."""

    code = "KEFU-ORDERS"


class TicketStoreError(KefuError):
    """The handoff ticket database cannot be written or read."""

    code = "KEFU-TICKETS"


class SetupError(KefuError):
    """A set-up step (venv, model preparation) cannot run on this machine."""

    code = "KEFU-SETUP"


class StoreUnavailable(BaseException):  # noqa: N818 - see the docstring
    """The inner store stayed unreachable for ``retry_seconds``: the turn must fail.

    A ``BaseException`` on purpose: Rasa wraps every tracker store in a ``FailSafeTrackerStore``
    that catches any ``Exception`` and then runs the turn on an empty in-memory tracker (a reply
    from a forgotten conversation) and keeps its events in that process's memory only (lost when
    the store is back). Raising past it lets the channel (:mod:`components.channels.turns`)
    answer with an apology and store nothing.

    Attributes:
        code: ``KEFU-STORE``, for logs (the customer gets the channel's apology).

    Args:
        operation: ``save`` or ``retrieve``.
        error: The last error's type name.
    """

    code = "KEFU-STORE"

    def __init__(self, operation: str, error: str) -> None:
        super().__init__(f"tracker store unreachable during {operation} ({error})")
        self.operation = operation
        self.error = error
