"""Shared fixtures: offline environment, isolated KEFU_HOME, one small trained model."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

for key, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "RASA_TELEMETRY_ENABLED": "false",
    "HAYSTACK_TELEMETRY_ENABLED": "False",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ[key] = value
os.environ.setdefault("KEFU_WARMUP", "0")  # tests warm up explicitly
# endpoints.yml reads these (Rasa refuses the file without them); servers in tests set their own
os.environ.setdefault("KEFU_ACTIONS_URL", "http://127.0.0.1:5055/webhook")
os.environ.setdefault("KEFU_ACTION_SECRET", "kefu-test-action-secret-0123456789")

from components.assistants import DEFAULT_ASSISTANT  # noqa: E402
from deployment.commands import ROOT, rasa_cli, train_command  # noqa: E402

__all__ = ["ROOT", "rasa_cli"]


@pytest.fixture(autouse=True)
def kefu_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own runtime folder (index, databases)."""
    home = tmp_path / "kefu_home"
    home.mkdir()
    monkeypatch.setenv("KEFU_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def fresh_services(kefu_home):
    """Every test starts with a fresh process services object (built lazily from settings)."""
    from components.services import set_services

    previous = set_services(None)
    yield
    set_services(previous)


@pytest.fixture
def guard_settings(tmp_path):
    """Install services whose guard uses an extra lexicon: ``install(lines) -> Services``."""
    from components.services import Services, set_services
    from components.settings import GuardSettings, Settings

    def install(lexicon: str, **guard) -> Services:
        path = tmp_path / "custom_lexicon.tsv"
        path.write_text(lexicon, encoding="utf-8")
        services = Services(Settings(guard=GuardSettings(lexicons=(str(path),), **guard)))
        set_services(services)
        return services

    return install


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory) -> Callable[[str], Path]:
    """``train(assistant) -> model``: each assistant trained once per session (fewer epochs)."""
    models: dict[str, Path] = {}

    def train(assistant: str) -> Path:
        if assistant not in models:
            out = tmp_path_factory.mktemp(f"models-{assistant}")
            result = subprocess.run(
                train_command(out, f"kefu-test-{assistant}", assistant=assistant),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            models[assistant] = out / f"kefu-test-{assistant}.tar.gz"
        return models[assistant]

    return train


@pytest.fixture(scope="session")
def trained_model(trained_models) -> Path:
    """The default assistant (the shop), trained once per session on its real domain and data."""
    return trained_models(DEFAULT_ASSISTANT)
