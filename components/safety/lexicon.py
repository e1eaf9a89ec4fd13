"""Lexicons: the TSV files of sensitive terms and the allow-list, and how they are read.

A lexicon is a TSV file: ``term<TAB>category<TAB>severity<TAB>action`` where ``action`` is
``block`` (the whole message is refused), ``mask`` (the span becomes ``***``) or ``flag``
(reported only); actions can be overridden per category. Lines starting with ``#`` are
comments. An allow-list holds phrases ("Scunthorpe", "成人票") inside which nothing is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from components.errors import ConfigError

LEXICON_DIR = Path(__file__).resolve().parent / "lexicons"
DEFAULT_LEXICON = LEXICON_DIR / "default.tsv"
DEFAULT_LEXICONS = (DEFAULT_LEXICON, LEXICON_DIR / "en_curated.tsv", LEXICON_DIR / "zh_curated.tsv")
DEFAULT_ALLOW = LEXICON_DIR / "allow.txt"
ACTIONS = ("flag", "mask", "block")  # ordered by strength


@dataclass(frozen=True)
class LexiconEntry:
    """One sensitive term with what to do when it occurs."""

    term: str
    category: str
    severity: int = 1
    action: str = "flag"


def load_lexicon(path: str | Path) -> list[LexiconEntry]:
    """Read a lexicon TSV file.

    Raises:
        ConfigError: when the file is missing or a line is malformed (names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("lexicon", str(path), "an existing TSV lexicon file", component="guard")
    entries = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("\t")]
        term, category = parts[0], parts[1] if len(parts) > 1 else "sensitive"
        try:
            severity = int(parts[2]) if len(parts) > 2 else 1
        except ValueError:
            raise ConfigError(
                f"{path.name}:{lineno} severity", parts[2], "an integer 1-3", component="guard"
            ) from None
        action = parts[3] if len(parts) > 3 else "flag"
        if action not in ACTIONS:
            raise ConfigError(
                f"{path.name}:{lineno} action", action, f"one of {ACTIONS}", component="guard"
            )
        entries.append(LexiconEntry(term, category, severity, action))
    return entries


def load_allow_list(path: str | Path) -> list[str]:
    """Read an allow-list file (one phrase per line, ``#`` comments)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("allow", str(path), "an existing allow-list file", component="guard")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]
