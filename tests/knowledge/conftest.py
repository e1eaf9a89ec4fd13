"""Knowledge-store fixtures: every store test runs on the embedded store and on PostgreSQL.

The PostgreSQL server is real: ``pgserver`` (a dev dependency) ships PostgreSQL 16 with the
pgvector extension as a wheel and runs it on a Unix socket in a temporary folder. Without it
the pgvector cases are skipped, never faked.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from components.settings import KnowledgeSettings
from knowledge.stores import KnowledgeStore, MemoryStore, store_from_settings

_tables = itertools.count()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory) -> Iterator[str]:
    """Connection string of a real PostgreSQL + pgvector server for this test session."""
    pgserver = pytest.importorskip("pgserver", reason="pgserver (dev extra) not installed")
    pytest.importorskip("haystack_integrations.document_stores.pgvector")
    server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(params=["memory", "pgvector"])
def make_store(request, tmp_path, monkeypatch) -> Callable[[], KnowledgeStore]:
    """A factory of stores of one kind that all see the same index (fresh per test)."""
    if request.param == "memory":
        path = tmp_path / "index.json"
        return lambda: MemoryStore(path)
    url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("PG_CONN_STR", url)
    table = f"kefu_test_{next(_tables)}"
    return lambda: store_from_settings(KnowledgeSettings(store="pgvector", table=table))
