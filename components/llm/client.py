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

from components.errors import ConfigError, LLMBusyError, LLMError, LLMTimeoutError
from components.llm.base import Generation, LLMBackend, Message

logger = logging.getLogger(__name__)

BACKENDS = ("transformers", "openai", "llamacpp")


#: A call with less time than this left when it leaves the queue is not started.
MIN_CALL_S = 0.02
#: Time after the deadline allowed for a finished generation to reach the caller.
RESULT_GRACE_S = 0.05
#: Weight of the newest call in the running mean of generation times (admission control).
LATENCY_SMOOTHING = 0.3


class LLMClient:
    """Front door to one backend.

    The timeout is per call: callers with different budgets (the NLG, a few-shot intent
    classifier) share one client, hence one loaded model, and pass their own ``timeout_s`` to
    :meth:`generate`, :meth:`generate_batch` or :meth:`agenerate`; without it the call gets the
    client's default.

    Args:
        backend: The backend that produces text.
        timeout_s: Default deadline per call, in seconds.

    Raises:
        ConfigError: When ``timeout_s`` is not positive.
    """

    def __init__(self, backend: LLMBackend, timeout_s: float = 2.0) -> None:
        if timeout_s <= 0:
            raise ConfigError("timeout", timeout_s, "a positive number of seconds", component="llm")
        self.backend = backend
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kefu-llm")
        # admission control for agenerate: calls queued or running, and their mean duration
        self._waiting = 0
        self._mean_s: float | None = None
        self._count_lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the backend now instead of on the first call."""
        self.backend.warm_up()

    def _call(self, method: Any, payload: Any, timeout: float, **kw: Any) -> Any:
        """Run a backend method with a deadline ``timeout`` seconds away.

        Args:
            method: The backend's ``generate`` or ``generate_batch``.
            payload: Its first argument (a chat, or a list of chats).
            timeout: Seconds until the deadline passed to the backend.
            **kw: Further generation settings (``max_new_tokens``, ``stop``, ...).

        Returns:
            What ``method`` returns.

        Raises:
            LLMError: For any failure; exceptions that are not already an :class:`LLMError`
                are wrapped (callers fall back on it).
        """
        try:
            return method(payload, deadline=time.monotonic() + timeout, **kw)
        except LLMError:
            raise
        except Exception as exc:  # backend bug or resource error
            logger.warning("llm.error backend=%s error=%s", self.backend.name, type(exc).__name__)
            raise LLMError(f"{self.backend.name} backend failed: {type(exc).__name__}") from exc

    def generate(
        self, messages: list[Message], timeout_s: float | None = None, **kw: Any
    ) -> Generation:
        """Blocking generation with a deadline (see :meth:`LLMBackend.generate`).

        Args:
            messages: The chat so far, oldest first.
            timeout_s: Seconds for this call; None (or 0) uses the client's ``timeout_s``.
            **kw: Generation settings passed on to the backend (``max_new_tokens``,
                ``temperature``, ``stop``).

        Returns:
            The finished generation.

        Raises:
            LLMTimeoutError: When the deadline stopped generation.
            LLMError: When the backend failed.
        """
        timeout = timeout_s or self.timeout_s
        gen = self._call(self.backend.generate, messages, timeout, **kw)
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

    def generate_batch(
        self, chats: list[list[Message]], timeout_s: float | None = None, **kw: Any
    ) -> list[Generation]:
        """Blocking generation for several chats with one deadline for all of them.

        Args:
            chats: The chats, each oldest message first.
            timeout_s: Seconds for the whole batch; None (or 0) uses the client's
                ``timeout_s``.
            **kw: Generation settings passed on to the backend, the same for every chat.

        Returns:
            One generation per chat, in order.

        Raises:
            LLMTimeoutError: When the deadline stopped any of them.
            LLMError: When the backend failed.
        """
        timeout = timeout_s or self.timeout_s
        started = time.monotonic()
        gens = self._call(self.backend.generate_batch, chats, timeout, **kw)
        if any(g.stopped_by == "deadline" for g in gens):
            raise LLMTimeoutError(
                f"{self.backend.name} did not finish {len(chats)} chats within {timeout:.1f}s",
                hint="raise the timeout, send fewer chats or use a faster backend",
                timeout_s=timeout,
            )
        logger.info(
            "llm.generate_batch backend=%s chats=%d latency_s=%.3f new_tokens=%d",
            self.backend.name,
            len(gens),
            time.monotonic() - started,
            sum(g.new_tokens for g in gens),
        )
        return gens

    async def agenerate(
        self, messages: list[Message], timeout_s: float | None = None, **kw: Any
    ) -> Generation:
        """Async wrapper for event loops (Rasa, sanic): never blocks the loop.

        Args:
            messages: The chat so far, oldest first.
            timeout_s: Seconds for this call; None (or 0) uses the client's ``timeout_s``.
            **kw: Generation settings passed on to the backend.

        Returns:
            The finished generation.

        Raises:
            LLMTimeoutError: When the deadline passed (or the worker thread did not answer
                within a second after it).
            LLMError: When the backend failed.
        """
        timeout = timeout_s or self.timeout_s
        # the deadline starts now: time spent queued behind other calls counts against it
        deadline = time.monotonic() + timeout
        with self._count_lock:
            ahead, mean = self._waiting, self._mean_s
            # with nothing measured yet only one call waits: its speed is unknown
            if ahead and (mean is None or (ahead + 1) * mean > timeout):
                # the calls in front and this one would not fit in its deadline: answer at once
                # (the caller falls back) instead of waiting to time out
                logger.info("llm.busy backend=%s waiting=%d", self.backend.name, ahead)
                each = "unmeasured" if mean is None else f"~{mean:.1f}s"
                raise LLMBusyError(
                    f"{self.backend.name} has {ahead} calls waiting ({each} each)",
                    hint="add capacity or use a faster backend",
                    timeout_s=timeout,
                )
            self._waiting += 1
        counted = [True]  # still counted in _waiting: released exactly once

        def release(took: float | None) -> None:
            with self._count_lock:
                if not counted[0]:
                    return
                counted[0] = False
                self._waiting -= 1
                if took is not None and took >= MIN_CALL_S:  # skipped calls say nothing
                    self._mean_s = (
                        took
                        if self._mean_s is None
                        else LATENCY_SMOOTHING * took + (1 - LATENCY_SMOOTHING) * self._mean_s
                    )

        def run() -> Generation:
            started = time.monotonic()
            try:
                left = deadline - started
                if left < MIN_CALL_S:
                    logger.info(
                        "llm.timeout backend=%s queued_past_deadline=true", self.backend.name
                    )
                    raise LLMTimeoutError(
                        f"{self.backend.name} was busy for the whole {timeout:.1f}s",
                        hint="raise the timeout, add capacity or use a faster backend",
                        timeout_s=timeout,
                    )
                return self.generate(messages, left, **kw)
            finally:
                release(time.monotonic() - started)

        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, run)
        try:
            # the backend stops itself at the deadline; the grace covers handing the result over
            return await asyncio.wait_for(
                future, max(0.0, deadline - time.monotonic()) + RESULT_GRACE_S
            )
        except asyncio.TimeoutError as exc:
            if future.cancelled():
                release(None)  # cancelled while still queued: run() never starts
            raise LLMTimeoutError(
                f"{self.backend.name} did not answer within {timeout:.1f}s", timeout_s=timeout
            ) from exc


_CLIENTS: dict[tuple, LLMClient] = {}
_CLIENTS_LOCK = threading.Lock()


def create_client(config: dict[str, Any] | None = None) -> LLMClient:
    """Return the process-wide client for ``config`` (built once per backend configuration).

    Config keys:
        backend: ``transformers`` (default, in-process), ``llamacpp`` (in-process GGUF through
            llama.cpp, optional extra) or ``openai`` (any OpenAI-compatible server, including
            ``python -m components.llm.serve``).
        model_path: transformers: local model folder; llamacpp: a ``.gguf`` file; default the
            bundled SmolLM2.
        threads: transformers/llamacpp: CPU threads (default: the library's choice).
        quantize: transformers: ``int8`` (default) or ``none`` (fp32).
        prefix_cache: transformers: system-message KV caches kept (default 8; 0 = off).
        decoder: transformers: ``lean`` (default: Kefu's int8 Llama-family decoder where the
            architecture allows) or ``generate`` (transformers' ``generate()``).
        adapter: transformers: ``auto`` (default: Kefu's shipped LoRA adapter, merged into the
            bundled SmolLM2; never onto another ``model_path``), ``none`` (the base model), or
            a folder with a PEFT LoRA adapter (``python -m training finetune train``).
        base_url: openai: server URL with the API prefix, e.g. ``http://127.0.0.1:8008/v1``.
        model: openai: model name the server expects (default ``kefu-local``).
        api_key_env: openai: variable holding the API key (default ``OPENAI_API_KEY``).
        retries, breaker_failures, breaker_reset_s: openai: see
            :class:`~components.llm.openai_backend.OpenAICompatibleBackend`.
        timeout: Seconds per call (default 2.0).

    Raises:
        ConfigError: for an unknown backend or bad value.
    """
    config = dict(config or {})
    backend_name = config.get("backend", "transformers")
    if backend_name not in BACKENDS:
        raise ConfigError("backend", backend_name, f"one of {BACKENDS}", component="llm")
    # one client (one loaded model) per backend configuration: callers pass their own deadline
    # per call, so the timeout only sets the default for callers that pass none
    key = tuple(sorted((k, str(v)) for k, v in config.items() if k != "timeout"))
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            timeout = float(config.get("timeout", 2.0))
            if backend_name == "openai":
                from components.llm.openai_backend import OpenAICompatibleBackend

                backend: LLMBackend = OpenAICompatibleBackend(
                    base_url=config.get("base_url", ""),
                    model=config.get("model", "kefu-local"),
                    api_key_env=config.get("api_key_env", "OPENAI_API_KEY"),
                    timeout_s=max(timeout, 0.1),
                    retries=int(config.get("retries", 2)),
                    breaker_failures=int(config.get("breaker_failures", 1)),
                    breaker_reset_s=float(config.get("breaker_reset_s", 30.0)),
                )
            elif backend_name == "llamacpp":
                from components.llm.llamacpp_backend import LlamaCppBackend

                backend = LlamaCppBackend(
                    model_path=config.get("model_path"), threads=config.get("threads")
                )
            else:
                from components.llm.transformers_backend import TransformersBackend

                backend = TransformersBackend(
                    model_path=config.get("model_path"),
                    threads=config.get("threads"),
                    quantize=config.get("quantize", "int8"),
                    prefix_cache=config.get("prefix_cache", 8),
                    decoder=config.get("decoder", "lean"),
                    adapter=config.get("adapter", "auto"),
                )
            _CLIENTS[key] = LLMClient(backend, timeout)
        return _CLIENTS[key]
