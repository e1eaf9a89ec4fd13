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
    "components/stores/tracker_store.py",
    "components/stores/event_broker.py",
    "components/channels/rest.py",
    "components/channels/socketio.py",
    "components/channels/slack.py",
    "components/channels/telegram.py",
    "components/channels/turns.py",
    "components/stores/lock_store.py",
    "components/stores/pika_broker.py",
    "components/serve_rasa.py",
    "components/rasa_cli.py",
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
    "components/assistants.py",
    "knowledge",
    "training",
    "deployment",
]
FORBIDDEN = ("rasa", "rasa_sdk")
#: The runtime: what Rasa, the action server and the channels load. None of it may import the
#: training package (top-level or inside a function), so training code never ships in a process.
RUNTIME = ["components", "knowledge", "actions", "rasa_sdk_plugins"]
TRAINING = "training"
#: What each outer layer may never import: the runtime knows none of them, the deployment package
#: and the training commands know no tests or benchmarks, benchmarks know no tests.
NEVER = {
    **{entry: {"training", "deployment", "benchmarks", "tests"} for entry in RUNTIME},
    "training": {"deployment", "benchmarks", "tests"},
    "deployment": {"training", "benchmarks", "tests"},
    "benchmarks": {"tests"},
}


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


def _imported_by_name(path: Path) -> set[str]:
    """Top-level package names loaded by ``importlib.import_module("...")`` or ``__import__``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        first = node.args[0]
        if name in ("import_module", "__import__") and isinstance(first, ast.Constant):
            if isinstance(first.value, str):
                names.add(first.value.split(".")[0])
    return names


ENGINE_FILES = [
    p for entry in ENGINES for p in _modules(entry) if str(p.relative_to(ROOT)) not in ADAPTERS
]
RUNTIME_FILES = [p for entry in RUNTIME for p in _modules(entry)]


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_engines_never_import_rasa(path):
    assert not _imported(path) & set(FORBIDDEN), f"{path.relative_to(ROOT)} imports rasa"


@pytest.mark.parametrize("path", RUNTIME_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_runtime_never_imports_training(path):
    """The dependency goes training -> runtime only: no runtime module imports ``training``."""
    imported = _imported(path) | _imported_by_name(path)
    assert TRAINING not in imported, f"{path.relative_to(ROOT)} imports {TRAINING}"


def test_the_training_rule_sees_every_kind_of_import(tmp_path):
    assert len(RUNTIME_FILES) > 50 and all((ROOT / entry).is_dir() for entry in RUNTIME)
    assert TRAINING in _imported(ROOT / "training" / "llm" / "train.py")
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f():\n    from training.llm import data\n", encoding="utf-8")
    by_name = tmp_path / "by_name.py"
    by_name.write_text(
        "import importlib\nimportlib.import_module('training.privacy.tagger_data')\n",
        encoding="utf-8",
    )
    assert TRAINING in _imported(lazy) and TRAINING in _imported_by_name(by_name)


@pytest.mark.parametrize("entry", sorted(NEVER))
def test_layers_import_only_inwards(entry):
    """runtime <- training, deployment <- benchmarks <- tests: never the other way."""
    wrong = {
        str(path.relative_to(ROOT)): sorted(
            (_imported(path) | _imported_by_name(path)) & NEVER[entry]
        )
        for path in _modules(entry)
    }
    assert not {k: v for k, v in wrong.items() if v}


def _concern(module: str) -> str | None:
    """The concern folder a module belongs to: ``components.llm``, ``actions.shop``, ``knowledge``.

    Top-level modules of ``components`` (``components.settings``) are concerns of their own.
    """
    parts = module.split(".")
    if parts[0] not in (*RUNTIME, "training", "deployment"):
        return None
    if parts[0] in ("components", "actions", "training") and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _concern_graph() -> dict[str, set[str]]:
    """Which concern imports which (imports inside functions included)."""
    graph: dict[str, set[str]] = {}
    for entry in (*RUNTIME, "training", "deployment"):
        for path in _modules(entry):
            source = _concern(_module_name(path))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                else:
                    continue
                for target in targets:
                    concern = _concern(target)
                    # "from components import errors" names the package itself: skip the package
                    if concern and concern != source and concern != "components":
                        graph.setdefault(source, set()).add(concern)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_concerns():
    """A concern folder's imports form a DAG, so each folder can be read on its own."""
    assert _cycles(_concern_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert "components.llm" in _concern_graph()["components.nlg"]


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
        "'components.nlu.guard_component', 'components.stores.tracker_store', "
        "'actions.shop.actions', "
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
