"""The interface every LLM backend implements."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass
class Generation:
    """A finished generation."""

    text: str
    backend: str
    latency_s: float
    new_tokens: int = 0
    stopped_by: str = "eos"  # eos | stop_string | max_tokens | deadline
    extra: dict = field(default_factory=dict)


class LLMBackend(abc.ABC):
    """A text generator behind :class:`components.llm.client.LLMClient`.

    Implementations must be safe to call from several threads (the client runs them in a
    thread pool) and must respect ``deadline`` (a ``time.monotonic()`` value) by stopping
    generation when it passes, so a timed-out call does not keep burning CPU.
    """

    name: str = "base"

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Load weights and run one tiny generation so the first real call is fast."""

    @abc.abstractmethod
    def generate(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        deadline: float | None = None,
    ) -> Generation:
        """Generate a reply to a chat.

        Args:
            messages: The chat so far, oldest first.
            max_new_tokens: Upper bound on generated tokens.
            temperature: 0 means greedy decoding.
            stop: Strings that end generation (not included in the text).
            deadline: ``time.monotonic()`` after which generation stops.

        Returns:
            The reply; ``stopped_by`` says why it ended (``deadline`` when the deadline did).
        """

    def generate_batch(
        self,
        chats: list[list[Message]],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        deadline: float | None = None,
    ) -> list[Generation]:
        """Generate a reply to each chat (same settings for all), in order.

        The default runs them one after the other, and once the deadline has passed it
        calls the backend no more: the remaining chats come back empty with
        ``stopped_by="deadline"``. Backends that can decode several sequences at once override it.

        Args:
            chats: The chats, each oldest message first.
            max_new_tokens: Upper bound on generated tokens per chat.
            temperature: 0 means greedy decoding.
            stop: Strings that end a reply (not included in its text).
            deadline: ``time.monotonic()`` after which no more generation happens.

        Returns:
            One generation per chat, in order.
        """
        results: list[Generation] = []
        for chat in chats:
            if results and results[-1].stopped_by == "deadline":
                results.append(Generation(text="", backend=self.name, latency_s=0.0,
                                          stopped_by="deadline"))  # fmt: skip
                continue
            results.append(
                self.generate(
                    chat,
                    max_new_tokens=max_new_tokens,
                    temperature=temperature,
                    stop=stop,
                    deadline=deadline,
                )
            )
        return results
