"""``rasa run`` with the HTTP API token taken from the environment, never from the command line.

Rasa 3.6 reads the token only from ``--auth-token`` (``rasa/cli/arguments/run.py``), and every
local user can read a process's command line (``ps``, ``/proc/<pid>/cmdline``). This launcher
takes ``KEFU_API_TOKEN`` from its environment (readable by its owner only) and hands it to Rasa's
own command line parser in-process: ``sys.argv`` is rebuilt inside Python, which does not change
what ``/proc/<pid>/cmdline`` shows. Everything else is Rasa's ``rasa run``, unchanged::

    KEFU_API_TOKEN=... python -m components.serve_rasa --enable-api -m models --port 5005

Refuses ``--auth-token`` on its own command line, and ``--enable-api`` without a token.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

#: Where the HTTP API token comes from.
TOKEN_ENV = "KEFU_API_TOKEN"
#: Rasa's own options for the token (refused here: they would show it on the command line).
TOKEN_OPTIONS = ("-t", "--auth-token")


class UsageError(ValueError):
    """The launcher's arguments or environment cannot start a protected server."""


def rasa_arguments(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The arguments of ``rasa`` (after the program name) for ``rasa run`` with ``argv``.

    Args:
        argv: ``rasa run``'s options, without ``run`` and without the token.
        environ: The environment (``KEFU_API_TOKEN``).

    Returns:
        ``["run", "--auth-token", token, *argv]``, or ``["run", *argv]`` without a token.

    Raises:
        UsageError: a token option is in ``argv``, or ``--enable-api`` is asked without a token.
    """
    if any(arg in TOKEN_OPTIONS or arg.startswith("--auth-token=") for arg in argv):
        raise UsageError(f"pass the API token in {TOKEN_ENV}, not on the command line")
    token = environ.get(TOKEN_ENV, "")
    if not token:
        if "--enable-api" in argv:
            raise UsageError(f"--enable-api needs {TOKEN_ENV} (the HTTP API would be open)")
        return ["run", *argv]
    return ["run", "--auth-token", token, *argv]


def main(argv: Sequence[str] | None = None) -> int:
    """Run Rasa's command line in this process with the token from the environment.

    Args:
        argv: ``rasa run``'s options (default: this process's arguments).

    Returns:
        The exit status (2 for a usage error; Rasa exits by itself on its own errors).
    """
    try:
        arguments = rasa_arguments(sys.argv[1:] if argv is None else argv, os.environ)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from rasa.__main__ import main as rasa_main  # heavy: only once the arguments are good

    from components.rasa_cli import prepare_warnings

    prepare_warnings()
    sys.argv = ["rasa", *arguments]  # (in-process only: /proc/<pid>/cmdline is unchanged)
    rasa_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
