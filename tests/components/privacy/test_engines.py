"""The privacy engines stay free of Rasa: only the tracker store and event broker adapt to it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import components.privacy

PACKAGE = Path(components.privacy.__file__).parent
ENGINES = (
    "recognisers",
    "vault",
    "pii",
    "event_masking",
    "log_masking",
    "tagger",
)


def _imported(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):  # function-level imports included
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", ENGINES)
def test_engine_does_not_import_rasa(module):
    assert not {n for n in _imported(module) if n.split(".")[0] in ("rasa", "rasa_sdk")}


def test_engines_load_without_rasa():
    code = (
        "import sys\n"
        + "".join(f"import components.privacy.{m}\n" for m in ENGINES)
        + "print(sorted({m.split('.')[0] for m in sys.modules} & {'rasa', 'rasa_sdk'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parents[1],
    )
    assert out.stdout.strip() == "[]"


def test_every_module_is_an_engine():
    """The Rasa-facing stores that use the masking live in components.stores."""
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(ENGINES)
