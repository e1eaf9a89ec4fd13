"""Per-sender token buckets with an injected clock."""

import pytest

from components.channels.limits import RateLimiter, retry_after
from components.errors import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_the_rate():
    clock = Clock()
    limiter = RateLimiter(rate_per_minute=30, burst=10, clock=clock)
    assert [limiter.try_acquire("a") for _ in range(10)] == [0.0] * 10
    wait = limiter.try_acquire("a")
    assert wait == pytest.approx(2.0)  # 30 per minute: one token every 2 s
    clock.now += 1.0
    assert limiter.try_acquire("a") == pytest.approx(1.0)  # a refused try takes nothing
    clock.now += 1.0
    assert limiter.try_acquire("a") == 0.0
    assert limiter.try_acquire("a") == pytest.approx(2.0)


def test_senders_have_their_own_buckets():
    clock = Clock()
    limiter = RateLimiter(rate_per_minute=60, burst=2, clock=clock)
    assert limiter.try_acquire("a") == limiter.try_acquire("a") == 0.0
    assert limiter.try_acquire("a") > 0
    assert limiter.try_acquire("b") == 0.0


def test_the_bucket_refills_up_to_the_burst_only():
    clock = Clock()
    limiter = RateLimiter(rate_per_minute=60, burst=3, clock=clock)
    for _ in range(3):
        limiter.try_acquire("a")
    clock.now += 3600
    assert [limiter.try_acquire("a") for _ in range(3)] == [0.0] * 3
    assert limiter.try_acquire("a") == pytest.approx(1.0)


def test_memory_is_bounded_least_recently_seen_out():
    clock = Clock()
    limiter = RateLimiter(rate_per_minute=1, burst=1, max_senders=3, clock=clock)
    for sender in ["a", "b", "c"]:
        assert limiter.try_acquire(sender) == 0.0
    assert limiter.try_acquire("a") > 0  # a is now the most recently seen
    limiter.try_acquire("d")  # b is forgotten
    assert len(limiter) == 3
    assert limiter.try_acquire("b") == 0.0  # forgotten: starts with a full bucket
    assert limiter.try_acquire("a") > 0  # a was kept
    for n in range(10_000):
        limiter.try_acquire(f"flood-{n}")
    assert len(limiter) == 3


def test_rate_zero_turns_limiting_off():
    limiter = RateLimiter(rate_per_minute=0, burst=1)
    assert all(limiter.try_acquire("a") == 0.0 for _ in range(1000))
    assert len(limiter) == 0


def test_retry_after_is_whole_seconds_at_least_one():
    assert retry_after(0.01) == 1
    assert retry_after(1.0) == 1
    assert retry_after(1.2) == 2


@pytest.mark.parametrize(
    "kwargs",
    [{"rate_per_minute": -1, "burst": 1}, {"rate_per_minute": 1, "burst": 0},
     {"rate_per_minute": 1, "burst": 1, "max_senders": 0}],
)  # fmt: skip
def test_bad_limits(kwargs):
    with pytest.raises(ConfigError):
        RateLimiter(**kwargs)
