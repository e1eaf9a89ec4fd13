"""Per-sender rate limiting: one token bucket per sender, in memory, bounded.

Each sender may send ``burst`` messages at once and ``rate_per_minute`` on average after that.
The state lives in the process: with several Rasa replicas each replica enforces its own limit
(a sender spread over N replicas by a load balancer gets up to N times the rate). Memory is
bounded: at most ``max_senders`` buckets are kept, the least recently seen sender is forgotten
first (it then starts again with a full bucket, which only ever errs on the lenient side).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from components.errors import ConfigError


class RateLimiter:
    """Token buckets keyed by sender, least recently used out.

    Args:
        rate_per_minute: Tokens added per minute (0: no limit, every call is allowed).
        burst: Bucket size: messages a sender may send in a row.
        max_senders: Buckets kept at most.
        clock: Monotonic seconds (tests pass a fake clock).

    Raises:
        ConfigError: On a negative rate, or a burst or size below 1.
    """

    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        max_senders: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_minute < 0:
            raise ConfigError("rate_per_minute", rate_per_minute, "a number >= 0")
        if burst < 1:
            raise ConfigError("burst", burst, "an integer >= 1")
        if max_senders < 1:
            raise ConfigError("max_tracked_senders", max_senders, "an integer >= 1")
        self.rate_per_minute = rate_per_minute
        self.burst = burst
        self.max_senders = max_senders
        self._per_second = rate_per_minute / 60.0
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, time
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many senders the limiter remembers."""
        return len(self._buckets)

    def try_acquire(self, key: str) -> float:
        """Take one token for ``key``.

        Returns:
            0.0 when the message may go through, otherwise the seconds until it may.
        """
        if not self._per_second:
            return 0.0
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - last) * self._per_second)
            if tokens >= 1.0:
                tokens, wait = tokens - 1.0, 0.0
            else:
                wait = (1.0 - tokens) / self._per_second
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_senders:
                self._buckets.popitem(last=False)
            return wait


def retry_after(wait_s: float) -> int:
    """The ``Retry-After`` header value for a wait: whole seconds, at least 1."""
    return max(1, math.ceil(wait_s))
