"""Backend for any OpenAI-compatible chat server: vLLM, Ollama, llama.cpp server, TGI, hosted APIs.

Also the way the Rasa process and the action server share one loaded local model: run
``python -m components.llm.serve`` once and point both at it.

Each call gets the time left before its deadline as HTTP timeout; connection errors, timeouts,
429 and 5xx responses are retried with exponential backoff while time remains. A circuit
breaker opens after ``breaker_failures`` failed calls in a row: for ``breaker_reset_s`` seconds
calls fail at once with :class:`~components.errors.LLMUnavailableError` (callers fall back to
their template or extractive answer), so a dead server costs one timeout, not one per turn.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any
from urllib.parse import urlparse

from components.errors import ConfigError, LLMError, LLMUnavailableError
from components.llm.base import Generation, LLMBackend, Message
from components.llm.circuit import CircuitBreaker

logger = logging.getLogger(__name__)


class OpenAICompatibleBackend(LLMBackend):
    """Chat completions over HTTP.

    Args:
        base_url: Server URL including the API prefix, e.g. ``http://127.0.0.1:8008/v1``.
        model: Model name the server expects.
        api_key_env: Environment variable holding the API key (unset: no key is sent).
        timeout_s: Upper bound for one HTTP request (the call's deadline may cut it shorter).
        retries: Extra attempts after a retryable failure.
        backoff_s: First backoff; doubles per attempt.
        breaker_failures: Failed calls in a row that open the circuit.
        breaker_reset_s: Seconds before a trial call once the circuit is open.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str = "default",
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 10.0,
        retries: int = 2,
        backoff_s: float = 0.25,
        breaker_failures: int = 1,
        breaker_reset_s: float = 30.0,
    ) -> None:
        parsed = urlparse(str(base_url or ""))
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(
                "base_url",
                base_url,
                "an http(s) URL such as http://127.0.0.1:8008/v1",
                component="llm",
            )
        if timeout_s <= 0 or retries < 0 or backoff_s < 0:
            raise ConfigError(
                "timeout/retries/backoff",
                (timeout_s, retries, backoff_s),
                "a positive timeout and non-negative retries and backoff",
                component="llm",
            )
        self.base_url, self.model = base_url.rstrip("/"), model
        self.api_key_env = api_key_env
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.breaker = CircuitBreaker(breaker_failures, breaker_reset_s)
        self._client: Any = None

    def _http(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            key = os.environ.get(self.api_key_env) or "not-needed"
            # retries are ours (they respect the call's deadline); the SDK must not add its own
            self._client = OpenAI(
                base_url=self.base_url, api_key=key, max_retries=0, timeout=self.timeout_s
            )
        return self._client

    def warm_up(self) -> None:
        """Build the HTTP client and ask the server for its models once.

        Importing ``openai`` takes about a second, which must not come out of the first call's
        deadline. A dead server is logged here, not raised.
        """
        try:
            self._http().models.list(timeout=min(self.timeout_s, 5.0))
        except Exception as exc:
            logger.warning("llm.openai.unreachable error=%s", type(exc).__name__)

    def generate(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        deadline: float | None = None,
    ) -> Generation:
        """One chat completion, retried while the deadline allows (see the module doc)."""
        import openai

        if not self.breaker.allow():
            raise LLMUnavailableError(
                f"LLM server {self.base_url} is down; not calling it for "
                f"{self.breaker.retry_in():.0f} s",
                hint="start the server or fix llm.base_url in endpoints.yml",
            )
        started = time.monotonic()
        deadline = deadline or started + self.timeout_s
        last_error: Exception | None = None
        for attempt in range(self.retries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                break
            try:
                response = self._http().chat.completions.create(
                    model=self.model,
                    messages=messages,
                    max_tokens=max_new_tokens,
                    temperature=temperature,
                    stop=(stop or None) and stop[:4],  # the API takes at most four
                    # the caller's deadline rules: clients are shared by callers with
                    # different deadlines, so the backend's own timeout is not a cap here
                    timeout=remaining,
                )
            except (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                    openai.InternalServerError) as exc:  # fmt: skip
                last_error = exc
                pause = self.backoff_s * 2**attempt
                if attempt == self.retries or time.monotonic() + pause >= deadline:
                    break
                time.sleep(pause)
                continue
            except openai.APIStatusError as exc:  # 4xx: our request is wrong, retrying won't help
                self.breaker.record_success()  # the server is up
                raise LLMError(
                    f"LLM server rejected the request ({exc.status_code})",
                    hint="check llm.model and the server's logs",
                ) from exc
            self.breaker.record_success()
            return self._generation(response, started)
        self.breaker.record_failure()
        logger.warning(
            "llm.openai.failed error=%s breaker=%s",
            type(last_error).__name__ if last_error else "deadline",
            self.breaker.state,
        )
        if last_error is None or isinstance(last_error, openai.APITimeoutError):
            return Generation("", self.name, time.monotonic() - started, stopped_by="deadline")
        raise LLMError(f"LLM server {self.base_url} failed: {type(last_error).__name__}")

    def _generation(self, response: Any, started: float) -> Generation:
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        stopped = {"length": "max_tokens", "stop": "eos"}.get(choice.finish_reason or "", "eos")
        return Generation(
            text=choice.message.content or "",
            backend=self.name,
            latency_s=time.monotonic() - started,
            new_tokens=getattr(usage, "completion_tokens", 0) or 0,
            stopped_by=stopped,
            extra={"model": getattr(response, "model", self.model)},
        )
