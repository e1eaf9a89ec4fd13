"""One real action server and one real `rasa run` for every end-to-end test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import Servers, running_servers


@pytest.fixture(scope="package")
def servers(trained_model, tmp_path_factory) -> Iterator[Servers]:
    with running_servers(trained_model, tmp_path_factory.mktemp("e2e_home")) as running:
        yield running
