"""One command line for every training and data-building job: ``python -m training <command>``.

    python -m training finetune data|train|evaluate|merge|export  # the LLM's LoRA adapter
    python -m training tagger        # the PII name/address tagger (~10 min on 2 cores)
    python -m training offensive     # the Chinese offensive-content classifier (~2 min)
    python -m training encoder       # the multilingual encoder's delta (~75 min, resumable)
    python -m training lexicons      # the curated default lexicons

``python -m training <command> --help`` shows a command's own options. Each command's module
is imported only when that command runs, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NamedTuple


class Command(NamedTuple):
    """One subcommand: the module whose ``main(argv)`` runs it, and its one-line help."""

    module: str
    help: str


#: Every subcommand, in the order ``--help`` lists them (each help fits on one line).
COMMANDS: dict[str, Command] = {
    "finetune": Command(
        "training.llm.cli", "the LLM's LoRA adapter: data | train | evaluate | merge | export"
    ),
    "tagger": Command(
        "training.privacy.tagger_training", "the PII name/address tagger (~10 min on 2 cores)"
    ),
    "offensive": Command(
        "training.safety.offensive_training", "the Chinese offensive-content classifier (~2 min)"
    ),
    "encoder": Command(
        "training.encoders.e5_finetune", "the multilingual encoder's delta (~75 min, resumable)"
    ),
    "lexicons": Command(
        "training.lexicon_curation", "the curated default lexicons, from public word lists"
    ),
}


class _OneLineFormatter(argparse.HelpFormatter):
    """Puts each command's help on its name's line (argparse 3.10 under-counts the indent)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=18, width=100)
        self._action_max_length = 16  # "    offensive" and two spaces


def parser() -> argparse.ArgumentParser:
    """The top-level parser: lists the commands (each command parses its own options)."""
    top = argparse.ArgumentParser(
        prog="python -m training",
        description="Train Kefu's shipped models and build its data; each command writes what "
        "the runtime reads (components/*/artifacts, components/safety/lexicons).",
        epilog="'python -m training <command> --help' shows a command's options.",
        formatter_class=_OneLineFormatter,
    )
    sub = top.add_subparsers(dest="command", metavar="<command>", required=True)
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.help, add_help=False)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command: ``argv[0]`` names it, the rest goes to its module's ``main``.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).

    Returns:
        The command's exit status.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        parser().parse_args(args[:1])  # --help, or an error naming the commands; exits
        return 2
    logging.basicConfig(level=logging.WARNING)
    module = importlib.import_module(COMMANDS[args[0]].module)
    return module.main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
