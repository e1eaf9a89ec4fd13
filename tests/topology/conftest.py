"""One running topology (tests/topology/cluster.py) for the topology tests.

Needs Debian's postgresql, redis-server, rabbitmq-server and nginx (``.ci/run`` installs them)
and root, as CI has (PostgreSQL and RabbitMQ are started as their own users). Without them the
tests are skipped with the reason, never faked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from deployment.topology import Cluster, missing_binaries, running_cluster


@pytest.fixture(scope="package")
def cluster(trained_model) -> Iterator[Cluster]:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (.ci/run installs them)")
    if os.geteuid() != 0:
        pytest.skip("the topology starts PostgreSQL and RabbitMQ as their users: run as root")
    with running_cluster(trained_model) as running:
        yield running
