"""Shared fixtures: offline environment, isolated KEFU_HOME, one small trained model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def rasa_cli() -> str:
    """The rasa executable of the running interpreter's environment."""
    return str(VENV_BIN / "rasa")


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


def fast_config(target: Path, intent_epochs: int = 10, ted_epochs: int = 30) -> Path:
    """config.yml with fewer epochs, for tests that need a trained model quickly."""
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    for item in config["pipeline"]:
        if item["name"].endswith("TransformerIntentEntityClassifier"):
            item["epochs"] = intent_epochs
            item["show_progress"] = False
    for item in config["policies"]:
        if item["name"] == "TEDPolicy":
            item["epochs"] = ted_epochs
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


def train_command(out: Path, name: str, config: Path | None = None) -> list[str]:
    """``rasa train`` on the real domain and data, into ``out``.

    ``config``: the configuration file (default: the fast test configuration, written to ``out``).
    """
    return [
        rasa_cli(),
        "train",
        "--domain",
        str(ROOT / "rasa_project" / "domain.yml"),
        "--data",
        str(ROOT / "training_data"),
        "--config",
        str(config or fast_config(out / "config.yml")),
        "--out",
        str(out),
        "--fixed-model-name",
        name,
    ]


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> Path:
    """A model trained once per session on the real domain and data (fewer epochs)."""
    out = tmp_path_factory.mktemp("models")
    result = subprocess.run(
        train_command(out, "kefu-test"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out / "kefu-test.tar.gz"
