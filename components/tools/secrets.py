"""Create the deployment secrets once: ``python -m components.tools.secrets KEFU_HOME/secrets.env``.

Writes ``KEFU_ACTION_SECRET`` (the shared secret the Rasa server sends to the action server on
every call), ``KEFU_API_TOKEN`` (the token of Rasa's HTTP API) and ``KEFU_SESSION_SECRET`` (signs
the web chat's session ids) as ``NAME=value`` lines, readable by the owner only. Existing values
are kept (values already set in the environment are not overwritten either) and only missing
names are added, so restarting never logs anyone out. Never commit the file.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

NAMES = ("KEFU_ACTION_SECRET", "KEFU_API_TOKEN", "KEFU_SESSION_SECRET")


def ensure(path: Path) -> dict[str, str]:
    """Read ``path``, adding any missing secret (file mode 600, a new folder 700).

    A file an older version left readable by others is made 600.

    Args:
        path: The ``secrets.env`` file.

    Returns:
        The secrets by name.
    """
    values: dict[str, str] = {}
    if path.is_file():
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        for line in path.read_text(encoding="utf-8").splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip() in NAMES and value.strip():
                values[name.strip()] = value.strip()
    missing = [n for n in NAMES if n not in values]
    if missing:
        for name in missing:
            values[name] = os.environ.get(name) or secrets.token_urlsafe(32)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("# Kefu deployment secrets (generated; never commit)\n")
            out.writelines(f"{name}={values[name]}\n" for name in NAMES)
        os.chmod(path, 0o600)
        print(f"[kefu] wrote {', '.join(missing)} to {path}", file=sys.stderr)
    return values


def main(argv: list[str] | None = None) -> int:
    """Command line: one argument, the secrets file."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m components.tools.secrets PATH/secrets.env", file=sys.stderr)
        return 2
    ensure(Path(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
