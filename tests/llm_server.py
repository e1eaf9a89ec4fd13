"""A real ``python -m components.llm.serve`` process on a free loopback port, for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from deployment.commands import ROOT


class LLMServer:
    """Context manager: starts the server, waits until the model is loaded, stops it.

    Args:
        folder: Where the server's log goes.
        api_key: Key the server requires (``Authorization: Bearer ...``), or None.
    """

    def __init__(self, folder: Path, api_key: str | None = None) -> None:
        self.folder, self.api_key = folder, api_key
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log = folder / "llm_server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("KEFU_TEST_SERVER_KEY", None)
        if self.api_key:
            env["KEFU_TEST_SERVER_KEY"] = self.api_key
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "components.llm.serve", "--port", str(self.port),
             "--api-key-env", "KEFU_TEST_SERVER_KEY"],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"LLM server exited:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.base_url[:-3]}/health", timeout=2).json()["status"] == "ok":
                    return
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"LLM server did not come up:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> LLMServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
