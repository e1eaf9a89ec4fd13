"""Where the training commands read the public datasets from (nothing at run time does)."""

from __future__ import annotations

import os
from pathlib import Path

from components.paths import PROJECT_ROOT


def datasets_dir() -> Path:
    """The public datasets folder (``KEFU_DATASETS``; default ``../shared/datasets``).

    Returns:
        The folder (it may not exist: each command checks for the files it needs).
    """
    return Path(os.environ.get("KEFU_DATASETS") or PROJECT_ROOT.parent / "shared" / "datasets")
