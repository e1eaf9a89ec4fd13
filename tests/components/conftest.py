"""Rasa graph-component fixtures (the same objects Rasa's own component tests use)."""

from __future__ import annotations

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource


@pytest.fixture
def model_storage(tmp_path) -> LocalModelStorage:
    (tmp_path / "storage").mkdir()
    return LocalModelStorage(tmp_path / "storage")


@pytest.fixture
def resource() -> Resource:
    return Resource("kefu_component")


@pytest.fixture
def execution_context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test-model")
