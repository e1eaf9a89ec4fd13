"""Settings flow into the engines: read once at the edges, passed in, never fetched inside.

Checked on the source (no imports of the modules): only the settings and services modules, the
command lines and the Rasa adapters listed here may call ``load_settings`` or ``get_services``;
everything else under ``knowledge/`` and ``components/`` is given its settings and collaborators
by its caller. And the knowledge engines take the ``KnowledgeSettings`` dataclass, the only
place of the knowledge defaults.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FETCHERS = {"load_settings", "get_services"}
PACKAGES = ("knowledge", "components")
#: Modules that may read the settings or reach the process's services object, and why.
ALLOWED = {
    "components/settings.py": "defines load_settings",
    "components/services.py": "defines get_services; reads the settings once per process",
    "knowledge/__main__.py": "command line (python -m knowledge)",
    "components/nlg/rephrasing.py": "Rasa adapter (the NLG Rasa builds from endpoints.yml)",
    "components/nlu/guard_component.py": "Rasa adapter (pipeline component)",
    "components/nlu/llm_intent_classifier.py": "Rasa adapter (pipeline component)",
    "components/stores/tracker_store.py": "Rasa adapter (tracker store built by Rasa)",
    "components/stores/event_broker.py": "Rasa adapter (event broker built by Rasa)",
    # not an adapter: its callers (the REST channel, the action server) should pass the masker
    "components/stores/handoff_queue.py": "sender_token() reaches the services' PII masker",
}
#: The knowledge engines built from ``KnowledgeSettings`` (and at most three more parameters).
SETTINGS_TAKERS = {
    "knowledge/retrieval.py": "KnowledgeBase",
    "knowledge/index.py": "KnowledgeIndex",
}
MAX_PARAMETERS = 4  # settings, store and at most two injected collaborators


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _fetches(path: Path) -> list[str]:
    """``load_settings``/``get_services`` calls and imports in ``path``, as ``name:line``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in FETCHERS:
                found.append(f"{name}:{node.lineno}")
        elif isinstance(node, ast.ImportFrom):
            found += [f"{a.name}:{node.lineno}" for a in node.names if a.name in FETCHERS]
    return found


@pytest.mark.parametrize("path", [p for p in _modules() if _name(p) not in ALLOWED], ids=_name)
def test_engines_are_given_settings_and_services(path):
    assert not _fetches(path), (
        f"{_name(path)} fetches {_fetches(path)}: take the settings or the object from the "
        "caller (or, for an entry point, list it in ALLOWED with the reason)"
    )


def test_the_allowed_list_names_real_files_that_do_fetch():
    for name in ALLOWED:
        path = ROOT / name
        assert path.is_file(), f"{name} is gone: remove it from ALLOWED"
        if name not in ("components/settings.py", "components/services.py"):
            assert _fetches(path), f"{name} no longer fetches: remove it from ALLOWED"


def _class(path: Path, name: str) -> ast.ClassDef:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


@pytest.mark.parametrize(("module", "cls"), SETTINGS_TAKERS.items())
def test_knowledge_engines_take_the_settings_dataclass(module, cls):
    init = next(
        n
        for n in _class(ROOT / module, cls).body
        if isinstance(n, ast.FunctionDef) and n.name == "__init__"
    )
    args = init.args
    parameters = [*args.posonlyargs, *args.args, *args.kwonlyargs][1:]  # without self
    assert len(parameters) <= MAX_PARAMETERS, f"{cls} takes {len(parameters)} parameters"
    first = parameters[0]
    assert first.arg == "settings" and ast.unparse(first.annotation) == "KnowledgeSettings"
    defaults = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
    # a default value of a setting belongs to KnowledgeSettings: the rest default to None
    assert all(isinstance(d, ast.Constant) and d.value is None for d in defaults), cls


def test_the_settings_have_no_second_list_of_knowledge_keys():
    settings = _class(ROOT / "components" / "settings.py", "KnowledgeSettings")
    methods = {n.name for n in settings.body if isinstance(n, ast.FunctionDef)}
    assert "retrieval_kwargs" not in methods
