"""Assistants: each one a named set of folders, chosen by one name.

An assistant is the same name in each of the product's fixed folders::

    rasa_project/<name>/domain.yml        responses, slots, forms (and credentials.yml)
    rasa_project/<name>/config.yml        optional: a pipeline of its own (default ./config.yml)
    training_data/<name>/*.yml            NLU examples, stories, rules
    knowledge/docs/<name>/*.md            the documents its knowledge base answers from
    actions/<name>/                       its custom actions and business data (a Python package)
    tests/assistants/<name>/              its test stories and held-out NLU examples

The selector is ``ASSISTANT`` for ``make`` (``make run ASSISTANT=shop``) and ``KEFU_ASSISTANT`` for
the processes (the Makefile exports one from the other); the default is :data:`DEFAULT_ASSISTANT`.
``python -m components.assistants`` lists the assistants and checks that each is complete.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from components.errors import ConfigError
from components.paths import PROJECT_ROOT

#: The environment variable that names the assistant a process serves.
ASSISTANT_ENV = "KEFU_ASSISTANT"
#: The assistant served when none is named.
DEFAULT_ASSISTANT = "shop"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class Assistant:
    """Where one assistant's files are.

    Attributes:
        name: The assistant's name (a lower-case Python identifier).
        root: The project folder holding the fixed top-level folders.
    """

    name: str
    root: Path = PROJECT_ROOT

    @property
    def project(self) -> Path:
        """``rasa_project/<name>``: the domain and channel credentials."""
        return self.root / "rasa_project" / self.name

    @property
    def domain(self) -> Path:
        """The Rasa domain file."""
        return self.project / "domain.yml"

    @property
    def credentials(self) -> Path:
        """The channels' credentials file."""
        return self.project / "credentials.yml"

    @property
    def config(self) -> Path:
        """The pipeline and policies: the assistant's own ``config.yml`` or the shared one."""
        own = self.project / "config.yml"
        return own if own.is_file() else self.root / "config.yml"

    @property
    def data(self) -> Path:
        """The training data folder (NLU, stories, rules)."""
        return self.root / "training_data" / self.name

    @property
    def docs(self) -> Path:
        """The knowledge documents ``python -m knowledge build`` indexes."""
        return self.root / "knowledge" / "docs" / self.name

    @property
    def actions_package(self) -> str:
        """The package the action server loads (``rasa run actions --actions ...``)."""
        return f"actions.{self.name}"

    @property
    def tests(self) -> Path:
        """Test stories and held-out NLU examples (``rasa test``)."""
        return self.root / "tests" / "assistants" / self.name

    @property
    def models(self) -> Path:
        """Where ``rasa train`` writes this assistant's models."""
        return self.root / "models" / self.name

    def missing(self) -> list[str]:
        """The required files and folders this assistant lacks (relative to the root)."""
        required = [
            self.domain,
            self.credentials,
            self.data,
            self.docs,
            self.root / "actions" / self.name / "__init__.py",
        ]
        return [str(p.relative_to(self.root)) for p in required if not p.exists()]


def assistant_names(root: Path = PROJECT_ROOT) -> list[str]:
    """The assistants in ``root``: every ``rasa_project/<name>/`` with a ``domain.yml``."""
    base = root / "rasa_project"
    if not base.is_dir():
        return []
    return sorted(
        p.name for p in base.iterdir() if (p / "domain.yml").is_file() and _NAME.match(p.name)
    )


def get_assistant(
    name: str | None = None,
    *,
    root: Path = PROJECT_ROOT,
    environ: Mapping[str, str] | None = None,
) -> Assistant:
    """The named assistant, else ``KEFU_ASSISTANT``'s, else the default one.

    Raises:
        ConfigError: naming the bad name and the assistants there are.
    """
    env = os.environ if environ is None else environ
    key = "assistant" if name is not None else ASSISTANT_ENV
    chosen = name if name is not None else (env.get(ASSISTANT_ENV) or DEFAULT_ASSISTANT)
    known = assistant_names(root)
    if not isinstance(chosen, str) or not _NAME.match(chosen) or chosen not in known:
        raise ConfigError(
            key,
            chosen,
            f"one of the assistants {known} (folders in rasa_project/)",
            component="assistants",
        )
    return Assistant(chosen, root)


def main(argv: list[str] | None = None) -> int:
    """``python -m components.assistants [NAME]``: list the assistants, or check one is complete."""
    args = sys.argv[1:] if argv is None else argv
    try:
        chosen = [get_assistant(args[0])] if args else [Assistant(n) for n in assistant_names()]
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    status = 0
    for assistant in chosen:
        missing = assistant.missing()
        if missing:
            print(f"{assistant.name}: missing {', '.join(missing)}", file=sys.stderr)
            status = 1
        elif not args:
            print(assistant.name)
    return status


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
