"""``python -m training``: one command line listing every training and data-building job."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from components.paths import PROJECT_ROOT
from training.__main__ import COMMANDS, main

EXPECTED = {"finetune", "tagger", "offensive", "encoder", "lexicons"}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_every_subcommand_with_one_line_each():
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    assert set(COMMANDS) == EXPECTED
    for name, command in COMMANDS.items():
        lines = [line for line in result.stdout.splitlines() if line.strip().startswith(name)]
        assert lines, f"{name} missing from --help:\n{result.stdout}"
        assert command.help in lines[0]  # one line each


def test_help_imports_no_training_module_and_no_torch():
    code = (
        "import sys\n"
        "from training.__main__ import parser\n"
        "parser().format_help()\n"
        "print(sorted(m for m in sys.modules if m.startswith('training.') or m == 'torch'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['training.__main__']"


def test_unknown_or_missing_command_is_an_error():
    result = _run("nonsense")
    assert result.returncode == 2 and "invalid choice" in result.stderr
    assert _run().returncode == 2


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_command_has_a_main_and_its_own_help(name, capsys):
    module = importlib.import_module(COMMANDS[name].module)
    assert callable(module.main)
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert f"python -m training {name}" in capsys.readouterr().out
