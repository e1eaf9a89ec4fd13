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
from tests.e2e.harness import free_port

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


def store(port: int, retry_seconds: float) -> RetryingRedisLockStore:
    config = EndpointConfig.from_dict(
        {
            "type": "components.stores.lock_store.RetryingRedisLockStore",
            "url": "127.0.0.1",
            "port": port,
            "retry_seconds": retry_seconds,
            "socket_timeout": 1,
        }
    )
    created = LockStore.create(config)  # the way Rasa builds it from endpoints.yml
    assert isinstance(created, RetryingRedisLockStore)
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
