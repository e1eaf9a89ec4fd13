"""Helpers shared by the benchmark scripts (paths, readers, statistics, output)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("KEFU_DATASETS", ROOT.parent / "shared" / "datasets"))


def dataset_path(path: Path) -> Path:
    """``path`` as given if it exists (or is absolute), else under ``KEFU_DATASETS``.

    So ``--faq ths_faq/faq.jsonl`` names the shared dataset and ``--faq my/faq.jsonl`` a file
    of one's own.
    """
    path = Path(path)
    return path if path.exists() or path.is_absolute() else DATASETS / path


def offline_env() -> None:
    """Never reach the network, never send telemetry (call before importing models)."""
    for key, value in {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HAYSTACK_TELEMETRY_ENABLED": "False",
        "RASA_TELEMETRY_ENABLED": "false",
    }.items():
        os.environ.setdefault(key, value)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def read_jsonl(path: Path) -> list[dict]:
    """All JSON objects of a JSONL file (blank lines skipped)."""
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` (0.0 when empty)."""
    import numpy as np

    return float(np.percentile(values, q)) if values else 0.0


def require_files(paths: list[Path]) -> bool:
    """Print a clear error for each missing input; True when all exist."""
    missing = [p for p in paths if not p.is_file()]
    for path in missing:
        print(f"error: {path} not found (set KEFU_DATASETS or pass the path)", file=sys.stderr)
    return not missing


def write_json(path: Path | None, results: dict) -> None:
    """Write the results (when a path was given)."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table (floats with three decimals)."""

    def cell(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
