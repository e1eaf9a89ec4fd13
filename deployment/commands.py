"""The Rasa commands a deployment runs, as the Makefile runs them, for one assistant."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from components.assistants import ASSISTANT_ENV, get_assistant
from components.paths import PROJECT_ROOT
from components.serve_rasa import TOKEN_ENV

#: The project folder (the servers run there, as ``make run`` does).
ROOT = PROJECT_ROOT
#: Largest HTTP body the Rasa server accepts (as the Makefile's ``MAX_BODY_BYTES``).
MAX_BODY_BYTES = 65536
#: The action server's limit: Rasa posts the whole conversation session to it.
ACTIONS_MAX_BODY_BYTES = 16 * 1024 * 1024


def rasa_cli() -> str:
    """The rasa executable of the running interpreter's environment."""
    return str(Path(sys.executable).parent / "rasa")


def fast_config(
    target: Path, intent_epochs: int = 10, ted_epochs: int = 30, assistant: str | None = None
) -> Path:
    """The assistant's config.yml with fewer epochs, for a trained model in a few minutes.

    Args:
        target: Where to write the configuration.
        intent_epochs: Epochs of the intent/entity model.
        ted_epochs: Epochs of the TED policy.
        assistant: The assistant (default: ``KEFU_ASSISTANT``'s, else the shop).

    Returns:
        ``target``.
    """
    config = yaml.safe_load(get_assistant(assistant).config.read_text(encoding="utf-8"))
    for item in config["pipeline"]:
        if item["name"].endswith("TransformerIntentEntityClassifier"):
            item["epochs"] = intent_epochs
            item["show_progress"] = False
    for item in config["policies"]:
        if item["name"] == "TEDPolicy":
            item["epochs"] = ted_epochs
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


def train_command(
    out: Path, name: str, config: Path | None = None, assistant: str | None = None
) -> list[str]:
    """``rasa train`` on an assistant's real domain and data, into ``out``.

    Args:
        out: The models folder.
        name: The model's file name (without ``.tar.gz``).
        config: The configuration (default: :func:`fast_config`, written to ``out``).
        assistant: The assistant (default: ``KEFU_ASSISTANT``'s, else the shop).
    """
    chosen = get_assistant(assistant)
    return [
        rasa_cli(),
        "train",
        "--domain",
        str(chosen.domain),
        "--data",
        str(chosen.data),
        "--config",
        str(config or fast_config(out / "config.yml", assistant=chosen.name)),
        "--out",
        str(out),
        "--fixed-model-name",
        name,
    ]


def action_server_command(port: int, *flags: str, assistant: str | None = None) -> list[str]:
    """``rasa run actions`` as the Makefile starts it (its env needs :func:`action_server_env`)."""
    package = get_assistant(assistant).actions_package
    return [rasa_cli(), "run", "actions", "--actions", package, "--port", str(port), *flags]


def action_server_env(env: dict, assistant: str | None = None) -> dict:
    """``env`` with the action server's body limit and the assistant it serves."""
    return {
        **env,
        "SANIC_REQUEST_MAX_SIZE": str(ACTIONS_MAX_BODY_BYTES),
        ASSISTANT_ENV: get_assistant(assistant, environ=env).name,
    }


def rasa_server_command(
    model: Path, endpoints: Path, credentials: Path, port: int, token: str, *flags: str
) -> list[str]:
    """``rasa run`` with the HTTP API behind ``token``, on loopback.

    The token is not on the command line (every local user can read that: ``ps``,
    ``/proc/<pid>/cmdline``): the command is :mod:`components.serve_rasa`, which reads it from
    ``KEFU_API_TOKEN``; start it with :func:`rasa_server_env`.

    Args:
        model: The trained model.
        endpoints: The endpoints file.
        credentials: The channels' credentials file.
        port: The port on 127.0.0.1.
        token: The HTTP API token (checked here; passed by :func:`rasa_server_env`).
        *flags: More ``rasa run`` options (``--debug``).

    Raises:
        ValueError: ``token`` is empty (the HTTP API would be open).
    """
    if not token:
        raise ValueError("the HTTP API needs a token")
    return [
        sys.executable,
        "-m",
        "components.serve_rasa",
        "--enable-api",
        "-m",
        str(model),
        "--endpoints",
        str(endpoints),
        "--credentials",
        str(credentials),
        "--port",
        str(port),
        "-i",
        "127.0.0.1",
        *flags,
    ]


def rasa_server_env(env: dict, token: str) -> dict:
    """``env`` with the HTTP API ``token`` where :mod:`components.serve_rasa` reads it."""
    return {**env, TOKEN_ENV: token}


def build_knowledge_index(env: dict) -> None:
    """``python -m knowledge build`` for the assistant and ``KEFU_HOME`` named in ``env``.

    Raises:
        subprocess.CalledProcessError: when the index cannot be built (its output attached).
    """
    subprocess.run(
        [sys.executable, "-m", "knowledge", "build"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
