"""The LLM client: deadlines, structured logging and backend selection.

Callers never talk to a backend directly. The client runs the blocking backend in a small
thread pool, enforces a timeout (the backend also stops itself at the deadline), logs one
structured event per call and raises :class:`~components.errors.LLMTimeoutError` /
:class:`~components.errors.LLMError`, which callers turn into their deterministic fallback.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from components.errors import ConfigError, LLMError, LLMTimeoutError
from components.llm.base import Generation, LLMBackend, Message

logger = logging.getLogger(__name__)

BACKENDS = ("transformers",)


class LLMClient:
    """Front door to one backend.

    Args:
        backend: The backend that produces text.
        timeout_s: Default deadline per call, in seconds.
    """

    def __init__(self, backend: LLMBackend, timeout_s: float = 2.0) -> None:
        if timeout_s <= 0:
            raise ConfigError("timeout", timeout_s, "a positive number of seconds", component="llm")
        self.backend = backend
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kefu-llm")

    def warm_up(self) -> None:
        """Load the backend now instead of on the first call."""
        self.backend.warm_up()

    def generate(
        self, messages: list[Message], timeout_s: float | None = None, **kw: Any
    ) -> Generation:
        """Blocking generation with a deadline (see :meth:`LLMBackend.generate`)."""
        timeout = timeout_s or self.timeout_s
        started = time.monotonic()
        try:
            gen = self.backend.generate(messages, deadline=started + timeout, **kw)
        except LLMError:
            raise
        except Exception as exc:  # backend bug or resource error: callers fall back
            logger.warning("llm.error backend=%s error=%s", self.backend.name, type(exc).__name__)
            raise LLMError(f"{self.backend.name} backend failed: {type(exc).__name__}") from exc
        if gen.stopped_by == "deadline":
            logger.info("llm.timeout backend=%s timeout_s=%.2f", self.backend.name, timeout)
            raise LLMTimeoutError(
                f"{self.backend.name} did not finish within {timeout:.1f}s",
                hint="raise the timeout or use a faster backend",
                timeout_s=timeout,
            )
        logger.info(
            "llm.generate backend=%s latency_s=%.3f new_tokens=%d stopped_by=%s",
            gen.backend,
            gen.latency_s,
            gen.new_tokens,
            gen.stopped_by,
        )
        return gen

    async def agenerate(
        self, messages: list[Message], timeout_s: float | None = None, **kw: Any
    ) -> Generation:
        """Async wrapper for event loops (Rasa, sanic): never blocks the loop."""
        timeout = timeout_s or self.timeout_s
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, lambda: self.generate(messages, timeout, **kw))
        try:
            # the backend stops itself at the deadline; the margin covers queueing.
            return await asyncio.wait_for(future, timeout + 1.0)
        except asyncio.TimeoutError as exc:
            raise LLMTimeoutError(
                f"{self.backend.name} did not answer within {timeout:.1f}s", timeout_s=timeout
            ) from exc


_CLIENTS: dict[tuple, LLMClient] = {}
_CLIENTS_LOCK = threading.Lock()


def create_client(config: dict[str, Any] | None = None) -> LLMClient:
    """Return the process-wide client for ``config`` (built once per distinct config).

    Config keys:
        backend: ``transformers`` (default).
        model_path: Local model folder; default is the bundled SmolLM2 (prepared on demand).
        timeout: Seconds per call (default 2.0).
        threads: torch CPU threads for the in-process backend (default: torch's choice).

    Raises:
        ConfigError: for an unknown backend or bad value.
    """
    config = dict(config or {})
    backend_name = config.get("backend", "transformers")
    if backend_name not in BACKENDS:
        raise ConfigError("backend", backend_name, f"one of {BACKENDS}", component="llm")
    key = tuple(sorted((k, str(v)) for k, v in config.items()))
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            from components.llm.transformers_backend import TransformersBackend

            backend = TransformersBackend(
                model_path=config.get("model_path"), threads=config.get("threads")
            )
            _CLIENTS[key] = LLMClient(backend, float(config.get("timeout", 2.0)))
        return _CLIENTS[key]
