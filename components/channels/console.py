"""A terminal chat with a running assistant over its REST channel (what ``make run`` opens).

    python -m components.channels.console --url http://127.0.0.1:5005 [--logs DIR]

Like ``rasa shell`` it talks to a running ``rasa run`` through the REST webhook, but it shows
only the conversation (the servers' logs go to files, whose folder it names once) and a reply's
buttons never take over the keyboard: they are listed with numbers, a number picks one, and
anything else is sent as typed — a customer can always write their own message after an offer
("需要转人工吗？" → "我的订单KF100871到哪了" is a new question, not a menu choice). ``rasa
shell``'s menu instead turns any line typed after buttons into the first button.

Commands: ``/quit`` (or Ctrl-D) ends the chat; ``/restart`` starts a new conversation. A message
the server could not take is kept: press Enter on an empty line to send it again.

The console's own lines (the prompt, the button hint, its notices) follow the conversation's
language: that of the latest bot reply, else of the customer's latest message, else the
terminal's locale (``LC_ALL``/``LC_MESSAGES``/``LANG``; English unless it is Chinese).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from components.text import customer_language, language_of

WEBHOOK = "/webhooks/rest/webhook"

#: Every line the console itself writes, per language (``{}`` fields are filled in).
MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "banner": (
            "Kefu demo shop — write in Chinese or English. /restart starts over, /quit ends."
        ),
        "logs": " Logs: {logs}",
        "bot": "Kefu: ",
        "prompt": "You: ",
        "buttons_hint": "(type a number to choose, or write your own message)",
        "restarted": "(a new conversation)",
        "not_sent": "(not sent: {reason})",
        "unreachable": (
            "(the assistant could not be reached: {reason}; your message was not sent — "
            "press Enter to send it again)"
        ),
    },
    "zh": {
        "banner": "Kefu 演示商店 —— 可以用中文或英文提问。/restart 重新开始，/quit 退出。",
        "logs": " 日志：{logs}",
        "bot": "客服：",
        "prompt": "我：",
        "buttons_hint": "（输入编号选择，或直接输入您的问题）",
        "restarted": "（已开始新的对话）",
        "not_sent": "（未发送：{reason}）",
        "unreachable": "（无法连接助手：{reason}；您的消息没有发出——按回车键重新发送）",
    },
}


def locale_language(environ: Mapping[str, str] = os.environ) -> str:
    """The terminal's language: ``zh`` for a Chinese locale, else ``en``.

    Args:
        environ: The environment (``LC_ALL`` wins over ``LC_MESSAGES`` over ``LANG``).

    Returns:
        ``zh`` or ``en``.
    """
    for key in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(key)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


@dataclass
class Reply:
    """One bot message: text and buttons (``title``, ``payload``)."""

    text: str = ""
    buttons: list[dict] = field(default_factory=list)


def parse_replies(body: str) -> list[Reply]:
    """The bot messages in a REST channel response (a JSON list, or one JSON object per line)."""
    body = body.strip()
    if not body:
        return []
    try:
        items = json.loads(body)
    except json.JSONDecodeError:
        items = [json.loads(line) for line in body.splitlines() if line.strip()]
    if isinstance(items, dict):
        items = [items]
    replies = []
    for item in items:
        if not isinstance(item, dict):
            continue
        buttons = [b for b in item.get("buttons") or [] if isinstance(b, dict)]
        if item.get("text") or buttons:
            replies.append(Reply(str(item.get("text") or ""), buttons))
    return replies


def reply_language(replies: list[Reply]) -> str | None:
    """The language of the bot's replies (their text, else their buttons' titles), or None."""
    text = " ".join(r.text for r in replies).strip()
    if not text:
        text = " ".join(str(b.get("title") or "") for r in replies for b in r.buttons)
    language = language_of(text)
    return language if language in MESSAGES else None


def choose(line: str, buttons: list[dict]) -> str:
    """What to send for ``line``: a listed button's payload for its number, else the line."""
    stripped = line.strip()
    if buttons and stripped.isdigit() and 1 <= int(stripped) <= len(buttons):
        button = buttons[int(stripped) - 1]
        return str(button.get("payload") or button.get("title") or stripped)
    return line


class Console:
    """The chat loop.

    Args:
        url: The Rasa server's base URL.
        sender: The conversation id (default: a new random one).
        out: Where the conversation is written.
        timeout: Seconds to wait for a reply.
        language: The console's language until the conversation shows one (``zh``/``en``;
            default: the terminal's locale, see :func:`locale_language`).
    """

    def __init__(
        self,
        url: str,
        sender: str | None = None,
        out: TextIO = sys.stdout,
        timeout: float = 60,
        language: str | None = None,
    ) -> None:
        self.url = url.rstrip("/") + WEBHOOK
        self.sender = sender or f"shell-{uuid.uuid4().hex[:8]}"
        self.out = out
        self.timeout = timeout
        self.buttons: list[dict] = []
        self.language = language if language in MESSAGES else locale_language()

    def text(self, key: str, **fields: str) -> str:
        """One of the console's own lines (:data:`MESSAGES`), in the conversation's language."""
        return MESSAGES[self.language][key].format(**fields)

    def prompt(self) -> str:
        """The prompt before the customer's input, in the conversation's language."""
        return self.text("prompt")

    def send(self, message: str) -> list[Reply]:
        """Post one message; the bot's replies.

        Raises:
            OSError: when the server cannot be reached or answers with an error.
        """
        data = json.dumps({"sender": self.sender, "message": message}).encode("utf-8")
        request = urllib.request.Request(
            self.url, data=data, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return parse_replies(response.read().decode("utf-8"))

    def show(self, replies: list[Reply]) -> None:
        """Write the bot's replies; remember the last one's buttons and the replies' language."""
        self.buttons = []
        self.language = reply_language(replies) or self.language
        for reply in replies:
            if reply.text:
                for number, line in enumerate(reply.text.splitlines()):
                    print((self.text("bot") if number == 0 else "      ") + line, file=self.out)
            if reply.buttons:
                self.buttons = reply.buttons
                choices = "   ".join(
                    f"[{i}] {b.get('title') or b.get('payload')}"
                    for i, b in enumerate(reply.buttons, start=1)
                )
                print(f"      {choices}", file=self.out)
                print("      " + self.text("buttons_hint"), file=self.out)
        self.out.flush()

    def handle(self, line: str) -> bool:
        """Send one typed line (a command, a button number or a message); False to stop."""
        command = line.strip().lower()
        if command in ("/quit", "/exit", "/stop"):
            return False
        if command == "/restart":
            self.sender = f"shell-{uuid.uuid4().hex[:8]}"
            self.buttons = []
            print(self.text("restarted"), file=self.out)
            return True
        message = choose(line, self.buttons)
        self.language = customer_language(message) or self.language
        self.show(self.send(message))
        return True

    def run(self, lines: TextIO | _InputLines = sys.stdin, prompt: bool = True) -> int:
        """Read lines until ``/quit`` or end of input; 0 on a normal end."""
        pending: str | None = None
        while True:
            if prompt:
                print(self.prompt(), end="", file=self.out, flush=True)
            line = lines.readline()
            if not line:
                print(file=self.out)
                return 0
            line = line.rstrip("\n")
            if not line.strip():
                if pending is None:
                    continue
                line = pending
            try:
                if not self.handle(line):
                    return 0
                pending = None
            except urllib.error.HTTPError as exc:  # the server refused this message
                pending = None
                print(self.text("not_sent", reason=_error_message(exc)), file=self.out, flush=True)
            except (OSError, ValueError) as exc:
                pending = line
                reason = str(getattr(exc, "reason", None) or type(exc).__name__)
                print(self.text("unreachable", reason=reason), file=self.out, flush=True)


def _error_message(error: urllib.error.HTTPError) -> str:
    """The channel's error message (its JSON ``error.message``), else the HTTP status."""
    try:
        body = json.loads(error.read().decode("utf-8"))
        return str(body["error"]["message"])
    except Exception:
        return f"HTTP {error.code}"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5005", help="the Rasa server")
    parser.add_argument("--sender", default=None, help="conversation id (default: a new one)")
    parser.add_argument("--logs", default=None, help="folder of the servers' logs (shown once)")
    args = parser.parse_args(argv)
    console = Console(args.url, args.sender)
    where = console.text("logs", logs=args.logs) if args.logs else ""
    print(console.text("banner") + where, flush=True)
    try:
        import readline  # noqa: F401 - line editing and history for input()
    except ImportError:  # pragma: no cover - not on every platform
        pass
    try:
        return console.run(_InputLines(console.prompt), prompt=False)
    except KeyboardInterrupt:
        print()
        return 0


class _InputLines:
    """``readline()`` over :func:`input` (so the prompt and line editing work).

    Args:
        prompt: Gives the prompt to show before each line (the conversation's language).
    """

    def __init__(self, prompt: Callable[[], str]) -> None:
        self.prompt = prompt

    def readline(self) -> str:
        """The next typed line with its newline; ``""`` at the end of input."""
        try:
            return input(self.prompt()) + "\n"
        except EOFError:
            return ""


if __name__ == "__main__":
    sys.exit(main())
