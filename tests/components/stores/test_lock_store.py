"""The retrying Redis lock store against a real redis-server (Debian's; skipped without it)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time

import pytest
from rasa.core.lock_store import LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

from components.errors import ConfigError
from components.stores.lock_store import RetryingRedisLockStore
from deployment.servers import free_port

REDIS = shutil.which("redis-server")


class RedisServer:
    def __init__(self) -> None:
        self.port, self.proc = free_port(), None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        import redis

        while time.monotonic() < deadline:
            try:
                redis.StrictRedis(port=self.port).ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


@pytest.fixture
def redis_server():
    if not REDIS:
        pytest.skip("redis-server is not installed (.ci/services installs it)")
    server = RedisServer()
    server.start()
    yield server
    if server.proc.poll() is None:
        server.stop()


def store(
    port: int, retry_seconds: float, kind: type = RetryingRedisLockStore
) -> RetryingRedisLockStore:
    config = EndpointConfig.from_dict(
        {
            "type": f"{kind.__module__}.{kind.__qualname__}",
            "url": "127.0.0.1",
            "port": port,
            "retry_seconds": retry_seconds,
            "socket_timeout": 1,
        }
    )
    created = LockStore.create(config)  # the way Rasa builds it from endpoints.yml
    assert isinstance(created, kind)
    return created


async def take(locks: RetryingRedisLockStore, conversation: str) -> bool:
    async with locks.lock(conversation, lock_lifetime=5, wait_time_in_seconds=0.05):
        return True


def test_a_lock_waits_for_a_restarting_redis(redis_server):
    locks = store(redis_server.port, retry_seconds=10)
    assert asyncio.run(take(locks, "ann"))
    redis_server.stop()
    threading.Timer(1.0, redis_server.start).start()
    started = time.monotonic()
    assert asyncio.run(take(locks, "ann"))
    assert 0.8 < time.monotonic() - started < 9


def test_without_redis_for_longer_the_turn_fails_as_in_rasa(redis_server):
    locks = store(redis_server.port, retry_seconds=0.5)
    redis_server.stop()
    with pytest.raises(LockError):
        asyncio.run(take(locks, "bo"))


@pytest.mark.parametrize("bad", [-1, 51, "5", True])
def test_retry_seconds_is_validated(bad):
    with pytest.raises(ConfigError, match="retry_seconds"):
        store(free_port(), retry_seconds=bad)


def plain_store(port: int) -> RetryingRedisLockStore:
    return store(port, retry_seconds=0)


class Interleaved(RetryingRedisLockStore):
    """Runs ``meanwhile`` once, between this store's read of a lock and its write."""

    meanwhile = None

    def _decode(self, raw):
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return super()._decode(raw)


def interleaved(port: int) -> Interleaved:
    return store(port, retry_seconds=0, kind=Interleaved)


def test_rasas_redis_lock_store_hands_one_ticket_to_two_replicas(redis_server):
    """Why this store exists: Rasa's read-change-write lets two processes share a ticket."""
    from rasa.core.lock_store import RedisLockStore

    a, b = (RedisLockStore(host="127.0.0.1", port=redis_server.port) for _ in range(2))
    lock = a.get_or_create_lock("cy")  # replica A reads ...
    b_ticket = b.issue_ticket("cy")  # ... replica B issues meanwhile ...
    a_ticket = lock.issue_ticket(60)  # ... and A writes back what it read
    a.save_lock(lock)
    assert a_ticket == b_ticket  # both hold the conversation


def test_tickets_issued_at_the_same_moment_are_distinct(redis_server):
    a, b = interleaved(redis_server.port), plain_store(redis_server.port)
    issued = []
    a.meanwhile = lambda: issued.append(b.issue_ticket("cy"))
    issued.append(a.issue_ticket("cy"))  # B's write between A's read and write: A retries
    assert sorted(issued) == [0, 1]
    lock = b.get_lock("cy")
    assert [t.number for t in lock.tickets] == [0, 1]


def test_finishing_never_deletes_a_lock_someone_just_queued_for(redis_server):
    a, b = interleaved(redis_server.port), plain_store(redis_server.port)
    first = a.issue_ticket("dee")
    queued = []
    a.meanwhile = lambda: queued.append(b.issue_ticket("dee"))
    a.cleanup("dee", first)  # saw only its own ticket, then B queued: not deleted
    lock = b.get_lock("dee")
    assert lock is not None and [t.number for t in lock.tickets] == queued
    b.cleanup("dee", queued[0])
    assert b.get_lock("dee") is None


def test_expired_tickets_are_removed_and_an_empty_lock_deleted(redis_server):
    locks = plain_store(redis_server.port)
    locks.issue_ticket("eve", lock_lifetime=0.01)
    time.sleep(0.05)
    locks.update_lock("eve")
    assert locks.get_lock("eve") is None
    locks.update_lock("eve")  # nothing there: nothing written
    assert locks.get_lock("eve") is None


def test_replicas_taking_one_conversation_at_once_never_overlap(redis_server):
    """Four "replicas" (own connections, own threads) each run turns on one conversation."""
    import redis

    counter = redis.StrictRedis(port=redis_server.port, db=2)
    counter.set("turns", 0)
    errors = []

    def replica() -> None:
        locks = plain_store(redis_server.port)

        async def turns() -> None:
            for _ in range(8):
                async with locks.lock("flo", lock_lifetime=10, wait_time_in_seconds=0.005):
                    seen = int(counter.get("turns"))  # a lost update if two hold the lock
                    await asyncio.sleep(0.003)
                    counter.set("turns", seen + 1)

        try:
            asyncio.run(turns())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert int(counter.get("turns")) == 32
    assert plain_store(redis_server.port).get_lock("flo") is None  # cleaned up


def test_redis_gone_after_the_turn_does_not_fail_the_finished_turn(redis_server):
    locks = plain_store(redis_server.port)

    async def turn() -> str:
        async with locks.lock("gus", lock_lifetime=5, wait_time_in_seconds=0.05):
            redis_server.stop()  # the turn ran; Redis goes away before the lock is released
            return "answered"

    assert asyncio.run(turn()) == "answered"
