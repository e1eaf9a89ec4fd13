"""Where Kefu keeps its runtime state and model caches.

Nothing here is a machine path baked into the repository: every location is derived from
environment variables or the project folder at run time.

* ``KEFU_HOME`` — runtime state of one deployment (knowledge index, order and ticket
  databases, tracker store). Default: ``<project>/.kefu``.
* ``KEFU_MODEL_CACHE`` — converted model checkpoints, shared by every clone on the machine.
  Default: ``$XDG_CACHE_HOME/kefu`` or ``~/.cache/kefu``.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def kefu_home() -> Path:
    """Return (and create) the folder for this deployment's runtime state."""
    path = Path(os.environ.get("KEFU_HOME") or PROJECT_ROOT / ".kefu")
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_cache() -> Path:
    """Return (and create) the folder for converted model checkpoints."""
    base = os.environ.get("KEFU_MODEL_CACHE")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = str(Path(xdg) / "kefu")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path
