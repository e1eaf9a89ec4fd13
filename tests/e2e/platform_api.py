"""A local stand-in for the Slack Web API and the Telegram Bot API, on loopback.

The channels under test are configured with ``api_url`` pointing here; every call the bot makes
is recorded (method, parsed fields) so a test can assert what the customer would receive.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

BOT_NAME = "kefu_test_bot"


class Call(dict):
    """One recorded API call: ``platform``, ``method`` and ``fields`` (parsed body)."""


def _fields(content_type: str, body: bytes) -> dict[str, Any]:
    kind = content_type.split(";")[0].strip()
    if kind == "application/json":
        return json.loads(body or b"{}")
    if kind == "application/x-www-form-urlencoded":
        return {k: v[0] for k, v in parse_qs(body.decode()).items()}
    if kind == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        return {
            part.get_param("name", header="content-disposition"): part.get_content()
            for part in message.iter_parts()
        }
    return {}


class PlatformAPI:
    """The fake API server (start with :meth:`start`, read :attr:`calls`)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.do_POST()

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                fields = _fields(self.headers.get("content-type", ""), body)
                parts = self.path.split("?")[0].strip("/").split("/")
                platform, method = parts[0], parts[-1]
                with api._lock:
                    api.calls.append(Call(platform=platform, method=method, fields=fields))
                reply = api._reply(platform, method, fields)
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _reply(self, platform: str, method: str, fields: dict[str, Any]) -> dict[str, Any]:
        n = next(self._ids)
        if platform == "slack":
            return {"ok": True, "channel": fields.get("channel"), "ts": f"1700000000.{n:06d}"}
        if method == "getMe":
            result: Any = {"id": 42, "is_bot": True, "first_name": "Kefu", "username": BOT_NAME}
        elif method == "sendMessage":
            result = {
                "message_id": n,
                "date": int(time.time()),
                "chat": {"id": int(fields.get("chat_id", 0)), "type": "private"},
                "text": fields.get("text", ""),
            }
        else:
            result = True
        return {"ok": True, "result": result}

    def start(self) -> PlatformAPI:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sent(self, platform: str, method: str, **match: Any) -> list[dict[str, Any]]:
        """The fields of recorded calls of ``method`` whose fields contain ``match``."""
        with self._lock:
            calls = list(self.calls)
        return [
            c["fields"]
            for c in calls
            if c["platform"] == platform
            and c["method"] == method
            and all(str(c["fields"].get(k)) == str(v) for k, v in match.items())
        ]

    def wait_for(
        self, platform: str, method: str, count: int, timeout: float = 60, **match: Any
    ) -> list[dict[str, Any]]:
        """Wait until at least ``count`` matching calls arrived; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.sent(platform, method, **match)
            if len(found) >= count:
                return found
            time.sleep(0.2)
        raise AssertionError(
            f"expected {count} {platform} {method} calls matching {match}, got "
            f"{self.sent(platform, method, **match)}"
        )
