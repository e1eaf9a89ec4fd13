"""One real action server and one real `rasa run` for every end-to-end test module.

The server listens on REST, socket.io (with the web chat page), Slack and Telegram; the two
platforms' APIs are a local fake (:mod:`tests.e2e.platform_api`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deployment.servers import Servers, running_servers
from tests.e2e.platform_api import PlatformAPI


@pytest.fixture(scope="package")
def platform_api() -> Iterator[PlatformAPI]:
    """The fake Slack and Telegram APIs the servers' channels call."""
    api = PlatformAPI().start()
    yield api
    api.stop()


@pytest.fixture(scope="package")
def servers(trained_model, tmp_path_factory, platform_api) -> Iterator[Servers]:
    home = tmp_path_factory.mktemp("e2e_home")
    with running_servers(trained_model, home, platform_api=platform_api.url) as running:
        yield running
