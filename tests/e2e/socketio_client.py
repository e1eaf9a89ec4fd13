"""A minimal Engine.IO 4 / Socket.IO 5 client over a raw WebSocket, for tests and load.

Raw frames let a test send what a well-behaved client library never would (malformed packets,
binary frames, huge payloads) and check the server's answer.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets


class SocketClient:
    """One socket.io connection to ``url`` (``http://host:port``)."""

    def __init__(self, url: str, max_size: int = 2**22) -> None:
        self.url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.max_size = max_size
        self.events: asyncio.Queue = asyncio.Queue()
        self.ws: Any = None
        self.session_id: str | None = None
        self._reader: asyncio.Task | None = None
        self.closed = asyncio.Event()

    async def connect(self, session_id: str | None = None) -> str:
        """Open the socket, join the namespace, request a session; return its id."""
        self.ws = await websockets.connect(self.url, max_size=self.max_size)
        opening = await self.ws.recv()
        assert opening.startswith("0"), opening
        await self.ws.send("40")
        self._reader = asyncio.create_task(self._read())
        name, _ = await self.expect("connect")
        await self.emit("session_request", {"session_id": session_id})
        _, self.session_id = await self.expect("session_confirm")
        return self.session_id

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if not isinstance(frame, str):
                    continue
                if frame == "2":
                    await self.ws.send("3")
                elif frame.startswith("40"):
                    await self.events.put(("connect", None))
                elif frame.startswith("42"):
                    name, *data = json.loads(frame[2:])
                    await self.events.put((name, data[0] if data else None))
                elif frame.startswith("44"):
                    await self.events.put(("connect_error", frame[2:]))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def emit(self, event: str, data: Any) -> None:
        await self.ws.send("42" + json.dumps([event, data]))

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def expect(self, *names: str, timeout: float = 60) -> tuple[str, Any]:
        """The next event among ``names`` (others are skipped)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            name, data = await asyncio.wait_for(self.events.get(), max(left, 0.01))
            if name in names:
                return name, data

    async def say(self, text: str, timeout: float = 60) -> list[dict]:
        """Send a message; collect bot messages until the typing indicator goes off."""
        await self.emit("user_uttered", {"message": text, "session_id": self.session_id})
        replies = []
        while True:
            name, data = await self.expect(
                "bot_uttered", "bot_typing", "kefu_error", timeout=timeout
            )
            if name == "bot_uttered":
                replies.append(data)
            elif name == "kefu_error":
                return [{"error": data}]
            elif name == "bot_typing" and not data.get("typing"):
                return replies

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
