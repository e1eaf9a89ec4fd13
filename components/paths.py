"""Where Kefu keeps its runtime state and model caches, readable by the owner only.

Nothing here is a machine path baked into the repository: every location is derived from
environment variables or the project folder at run time.

* ``KEFU_HOME`` — runtime state of one deployment (knowledge index, order and ticket
  databases, tracker store, handoff queue, secrets, logs). Default: ``<project>/.kefu``. Its
  folders are mode 700 and its files 600: the servers call :func:`lock_down` when they start,
  which sets the process umask to 077 (every file created afterwards, SQLite journals included,
  is owner-only) and tightens what an older version left group- or world-readable.
* ``KEFU_MODEL_CACHE`` — converted model checkpoints, shared by every clone on the machine.
  Default: ``$XDG_CACHE_HOME/kefu`` or ``~/.cache/kefu``.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The process umask while Kefu runs: new files 600, new folders 700.
PRIVATE_UMASK = 0o077
FILE_MODE = 0o600
DIR_MODE = 0o700

logger = logging.getLogger(__name__)


def kefu_home() -> Path:
    """Return (and create, mode 700) the folder for this deployment's runtime state."""
    path = Path(os.environ.get("KEFU_HOME") or PROJECT_ROOT / ".kefu")
    if not path.is_dir():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        _tighten(path, DIR_MODE)  # mkdir's mode is filtered by the umask, never widened
    return path


def restrict_umask() -> int:
    """Make every file this process creates from now on owner-only (umask 077).

    Returns:
        The previous umask.
    """
    previous = os.umask(PRIVATE_UMASK)
    if previous & ~PRIVATE_UMASK:
        os.umask(previous | PRIVATE_UMASK)  # keep any bit the caller masked already
    return previous


def secure_tree(root: Path) -> int:
    """Make ``root`` and every folder under it 700 and every file 600.

    Symbolic links are neither followed nor changed; files owned by someone else (which
    ``chmod`` refuses) are skipped with a warning.

    Args:
        root: The folder to tighten (nothing happens when it does not exist).

    Returns:
        How many modes were changed.
    """
    if not root.is_dir() or root.is_symlink():
        return 0
    changed = int(_tighten(root, DIR_MODE))
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            changed += _tighten(Path(folder, name), DIR_MODE)
        for name in files:
            changed += _tighten(Path(folder, name), FILE_MODE)
    return changed


def lock_down() -> Path:
    """Start-up of a Kefu server process: umask 077, then ``KEFU_HOME`` made owner-only.

    Call it before the process writes anything under ``KEFU_HOME`` (the action server does when
    its app is built and again in every worker; the Rasa server when its tracker store is
    created).

    Returns:
        The ``KEFU_HOME`` folder.
    """
    restrict_umask()
    home = kefu_home()
    changed = secure_tree(home)
    if changed:
        logger.info("kefu_home.modes_tightened count=%d", changed)
    return home


def _tighten(path: Path, mode: int) -> bool:
    """Set ``path``'s permission bits to ``mode`` unless already so; True when changed."""
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) == mode:
            return False
        os.chmod(path, mode)
    except OSError as exc:  # e.g. a file another user owns
        logger.warning("kefu_home.chmod_failed error=%s", type(exc).__name__)
        return False
    return True


def model_cache() -> Path:
    """Return (and create) the folder for converted model checkpoints."""
    base = os.environ.get("KEFU_MODEL_CACHE")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = str(Path(xdg) / "kefu")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path
