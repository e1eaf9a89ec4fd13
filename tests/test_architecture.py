"""Layering rules of the code base, checked on the source (no imports needed)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The Rasa adapters: the only modules under components/ that may import rasa. They stay thin.
ADAPTERS = {
    "components/nlu/intent_entity_classifier.py",
    "components/nlu/llm_intent_classifier.py",
    "components/nlu/guard_component.py",
    "components/nlu/language_detector.py",
    "components/nlg/rephrasing.py",
    "components/privacy/tracker_store.py",
    "components/privacy/event_broker.py",
    "components/channels/rest.py",
    "components/channels/socketio.py",
    "components/channels/slack.py",
    "components/channels/telegram.py",
    "components/channels/turns.py",
    "components/stores/lock_store.py",
    "components/stores/pika_broker.py",
}
#: Engine folders and modules: never rasa, never rasa_sdk.
ENGINES = [
    "components/safety",
    "components/privacy",
    "components/llm",
    "components/nlu",
    "components/nlg",
    "components/tools",
    "components/channels",
    "components/encoders",
    "components/stores",
    "components/text.py",
    "components/settings.py",
    "components/services.py",
    "components/errors.py",
    "components/paths.py",
    "components/model_prep.py",
    "knowledge",
]
FORBIDDEN = ("rasa", "rasa_sdk")


def _modules(entry: str) -> list[Path]:
    path = ROOT / entry
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _imported(path: Path) -> set[str]:
    """Top-level package names imported anywhere in the file (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


ENGINE_FILES = [
    p for entry in ENGINES for p in _modules(entry) if str(p.relative_to(ROOT)) not in ADAPTERS
]


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_engines_never_import_rasa(path):
    assert not _imported(path) & set(FORBIDDEN), f"{path.relative_to(ROOT)} imports rasa"


def test_the_adapter_list_names_real_files_that_do_use_rasa():
    for adapter in ADAPTERS:
        assert "rasa" in _imported(ROOT / adapter), adapter


def test_adapters_stay_thin():
    """An adapter translates between Rasa and an engine: the engine holds the logic."""
    for adapter in ADAPTERS:
        lines = (ROOT / adapter).read_text(encoding="utf-8").count("\n")
        assert lines < 400, f"{adapter} has {lines} lines: move logic into an engine module"


def test_actions_and_components_do_no_work_at_import():
    """Importing the action package or the adapters builds no service and starts no thread."""
    code = (
        "import threading, importlib\n"
        "before = threading.active_count()\n"
        "for m in ('actions.actions', 'components.nlg.rephrasing', "
        "'components.nlu.guard_component', 'components.privacy.tracker_store', "
        "'components.channels.rest', 'components.channels.socketio', "
        "'components.channels.slack', 'components.channels.telegram'):\n"
        "    importlib.import_module(m)\n"
        "import components.services as s\n"
        "assert s._SERVICES is None, 'services built at import'\n"
        "assert threading.active_count() == before, 'thread started at import'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
