"""One lazily created object per action-server process (stores built on first use)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """Holds one ``T`` for the process, built by ``factory`` on first use; tests swap it.

    Args:
        factory: Builds the object (called at most once until :meth:`set` clears it).
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        """The process's object (built on the first call)."""
        with self._lock:
            if self._value is None:
                self._value = self._factory()
            return self._value

    def set(self, value: T | None) -> T | None:
        """Install ``value`` (None: a fresh one on next use) and return the one it replaces."""
        with self._lock:
            previous, self._value = self._value, value
        return previous
