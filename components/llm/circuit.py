"""A circuit breaker, so that a dead LLM server costs one timeout, not one per turn."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    """Closed → open after ``failures`` consecutive failures → half-open after ``reset_s``.

    While open, :meth:`allow` says no at once. After ``reset_s`` one trial call is let through
    (half-open): its success closes the circuit, its failure opens it for another ``reset_s``.

    Args:
        failures: Consecutive failures that open the circuit.
        reset_s: Seconds the circuit stays open before a trial call.
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(
        self, failures: int = 3, reset_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        if reset_s <= 0:
            raise ValueError("reset_s must be positive")
        self.failures, self.reset_s, self._clock = failures, reset_s, clock
        self._count = 0
        self._opened_at: float | None = None
        self._trial = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``."""
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether a call may go out now (only one trial call while half-open)."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self._trial:
                self._trial = True
                return True
            return False

    def record_success(self) -> None:
        """A call succeeded: close the circuit."""
        with self._lock:
            self._count, self._opened_at, self._trial = 0, None, False

    def record_failure(self) -> None:
        """A call failed: count it, and open (or re-open) the circuit when due."""
        with self._lock:
            self._count += 1
            if self._trial or self._count >= self.failures:
                self._opened_at, self._trial = self._clock(), False

    def retry_in(self) -> float:
        """Seconds until a trial call is allowed (0 when closed or half-open)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self.reset_s - (self._clock() - self._opened_at))
