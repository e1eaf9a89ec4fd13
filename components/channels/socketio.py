"""Rasa adapter: the socket.io channel with the REST channel's limits, and the web chat page.

Register it in ``credentials.yml`` instead of ``socketio:``::

    components.channels.socketio.GuardedSocketIOInput:
      user_message_evt: user_uttered
      bot_message_evt: bot_uttered
      session_persistence: true
      max_message_chars: 4000
      rate_per_minute: 30
      allowed_origins: [https://shop.example]   # default: $KEFU_CORS_ORIGINS, else localhost
      session_rate_per_minute: 10               # new session ids per client address
      session_burst: 20

Its name stays ``socketio``: Rasa's web chat widgets connect to ``/socket.io`` as before, and
the page this channel serves is at ``/webhooks/socketio/chat``. Compared with Rasa's channel:

* every ``user_uttered`` event is validated like a REST request (:mod:`.validation`): a bad
  one gets a ``kefu_error`` event (``{"status", "code", "message"}``) and never reaches Rasa;
  frames over the body limit are refused by the socket.io server itself;
* senders are rate limited per session (:mod:`.limits`);
* session ids are issued by the server and signed with ``KEFU_SESSION_SECRET``: a client can
  resume its own session after a reconnect, but cannot name (and so read) another one;
* a browser page may connect only from an allowed origin: the ``Origin`` header of the
  socket.io handshake (``connect``) and of every ``session_request`` must be one of
  ``allowed_origins`` — the channel option, else the space-separated ``KEFU_CORS_ORIGINS``
  (the Makefile exports its ``CORS_ORIGINS``, the list ``rasa run --cors`` gets), else
  :data:`DEFAULT_ORIGINS` (the Makefile's default for port 5005). A refused handshake gets
  socket.io's connect error with a message, a refused ``session_request`` a ``kefu_error``
  (403 ``origin_not_allowed``). This stops another site's page from chatting (and minting
  sessions) through its visitors' browsers. A request **without** ``Origin`` is accepted:
  browsers always send one on a WebSocket handshake and on cross-origin requests, so only
  non-browser clients (scripts, rasa-webchat in native apps, tests) omit it, and those can write
  any ``Origin`` they like anyway — checking it only ever protects browsers. Rasa's own
  ``--cors`` still writes the CORS headers (python-socketio's CORS handling stays off, so no
  response carries them twice);
* new session ids are rate limited per client address (``session_rate_per_minute``,
  ``session_burst``; a refusal is a ``kefu_error`` 429 ``session_rate_limited`` with
  ``retry_after``), so a script cannot mint sessions (and tracker rows) without bound; resuming
  a session one holds is free. The address is Sanic's ``request.remote_addr`` (a proxy's
  forwarded address when Sanic is told to trust it: ``FORWARDED_SECRET``, ``REAL_IP_HEADER``,
  ``PROXIES_COUNT``), else the peer's: behind a proxy Sanic does not trust, every client shares
  the proxy's budget. Like the message limits, it is per process;
* a ``bot_typing`` event (``{"typing": true|false}``) brackets every turn;
* a turn without a reply gets the same apology as on REST (:mod:`.turns`).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import rasa.core.channels.channel
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer
from socketio.exceptions import ConnectionRefusedError as SocketRefused

from components.channels.limits import RateLimiter, retry_after
from components.channels.options import RestOptions, credentials_dict
from components.channels.sessions import (
    DEFAULT_ORIGINS,
    ORIGIN_REFUSED,
    ORIGINS_ENV,
    SessionSigner,
    client_address,
    origin_allowed,
    parse_origins,
)
from components.channels.turns import (
    AppAgent,
    CountingOutput,
    OnNewMessage,
    TurnGuard,
    frames,
    sender_ref,
)
from components.channels.validation import Rejected, parse_socket_message
from components.errors import ConfigError, check_int, check_number

logger = logging.getLogger(__name__)

COMPONENT = "channels.socketio"
#: Rasa's own keys of the ``socketio`` block, passed through unchanged.
RASA_KEYS = {
    "user_message_evt": "user_uttered",
    "bot_message_evt": "bot_uttered",
    "namespace": None,
    "session_persistence": True,
    "socketio_path": "/socket.io",
    "jwt_key": None,
    "jwt_method": "HS256",
    "metadata_key": "metadata",
}
SECRET_ENV = "KEFU_SESSION_SECRET"
#: The channel's own keys (beside Rasa's and :class:`RestOptions`').
OWN_KEYS = ("web_page", "allowed_origins", "session_rate_per_minute", "session_burst")
ERROR_EVENT = "kefu_error"
TYPING_EVENT = "bot_typing"
#: Files of the web chat page (package data of components.channels.webchat).
PAGE_FILES = {
    "index.html": "text/html; charset=utf-8",
    "kefu-chat.js": "text/javascript; charset=utf-8",
    "kefu-chat.css": "text/css; charset=utf-8",
}


class GuardedSocketIOInput(AppAgent, SocketIOInput):
    """Rasa's socket.io channel with validated, bounded, rate-limited input and signed sessions.

    Args:
        options: Limits and switches shared with the REST channel.
        web_page: Serve the web chat page at ``/webhooks/socketio/chat``.
        secret: Session signing key (default: ``KEFU_SESSION_SECRET``; if unset, a random one
            per process, so sessions do not survive a restart or move between replicas).
        allowed_origins: Origins (``scheme://host[:port]``) a browser page may connect from, as
            a list or a space-separated string (default: ``KEFU_CORS_ORIGINS``, else
            :data:`DEFAULT_ORIGINS`).
        session_rate_per_minute: New session ids one client address may get per minute on
            average (0: no limit).
        session_burst: New session ids one client address may get in a row.
        **rasa_options: Rasa's own ``socketio`` keys (:data:`RASA_KEYS`).

    Raises:
        ConfigError: On a bad origin, rate or burst (the value is named).
    """

    def __init__(
        self,
        options: RestOptions | None = None,
        web_page: bool = True,
        secret: str | None = None,
        allowed_origins: str | Sequence[str] | None = None,
        session_rate_per_minute: float = 10,
        session_burst: int = 20,
        **rasa_options: Any,
    ) -> None:
        super().__init__(**{**RASA_KEYS, **rasa_options})
        self.options = options or RestOptions()
        self.web_page = web_page
        if allowed_origins is None:
            allowed_origins = os.environ.get(ORIGINS_ENV) or DEFAULT_ORIGINS
        self.allowed_origins = parse_origins(allowed_origins)
        check_number(
            "session_rate_per_minute",
            session_rate_per_minute,
            0,
            expected="a number >= 0 (0: no limit)",
            component=COMPONENT,
        )
        check_int("session_burst", session_burst, 1, component=COMPONENT)
        self.session_limiter = RateLimiter(
            session_rate_per_minute, session_burst, self.options.max_tracked_senders
        )
        self.limiter = self.options.rate_limiter()
        self.turns = TurnGuard.for_channel("socketio", self.options)
        secret = secret or os.environ.get(SECRET_ENV)
        if not secret:
            logger.warning(
                "channels.socketio.no_session_secret env=%s (sessions end on restart and do "
                "not move between replicas; run 'make secrets')",
                SECRET_ENV,
            )
            secret = secrets.token_urlsafe(32)
        self.signer = SessionSigner(secret)

    @classmethod
    def name(cls) -> str:
        """``socketio``: the socket path and the webhook prefix stay Rasa's."""
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any] | None) -> GuardedSocketIOInput:
        """The channel configured by its ``credentials.yml`` block.

        Raises:
            ConfigError: On an unknown key or a bad value.
        """
        credentials = credentials_dict(credentials, COMPONENT)
        rasa_options = {k: credentials.pop(k) for k in list(credentials) if k in RASA_KEYS}
        web_page = credentials.pop("web_page", True)
        if not isinstance(web_page, bool):
            raise ConfigError("web_page", web_page, "true or false", component=COMPONENT)
        own = {k: credentials.pop(k) for k in OWN_KEYS[1:] if k in credentials}
        options = RestOptions.from_credentials(credentials, {*RASA_KEYS, *OWN_KEYS}, COMPONENT)
        return cls(options, web_page, **own, **rasa_options)

    def origin_allowed(self, environ: Mapping[str, Any] | None) -> bool:
        """Whether the request of ``environ`` may use the channel.

        No ``Origin``: not a browser. A page of this server itself (the web chat page: its
        Origin names the ``Host`` the request came to) is same-origin and always allowed.
        """
        return origin_allowed(environ or {}, self.allowed_origins)

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """The socket.io server (on ``socketio_path``), the health route and the web page."""
        sio = AsyncServer(
            async_mode="sanic",
            cors_allowed_origins=[],
            max_http_buffer_size=self.options.body_limit,
            logger=_ClientErrorLogger(logging.getLogger("socketio.server")),
            engineio_logger=_ClientErrorLogger(logging.getLogger("engineio.server")),
        )
        bp = SocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        self.sio = sio

        @bp.listener("before_server_start")
        async def remember_app(app: Any, _loop: Any) -> None:
            self.remember_app(app)

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        if self.web_page:

            @bp.route("/chat", methods=["GET"])
            async def page(_: Request) -> HTTPResponse:
                return _page_file("index.html")

            @bp.route("/chat/<name>", methods=["GET"])
            async def asset(_: Request, name: str) -> HTTPResponse:
                return _page_file(name)

        @sio.on("connect", namespace=self.namespace)
        async def connect(sid: str, environ: dict, auth: Any = None) -> bool:
            if not self.origin_allowed(environ):
                logger.info("channels.socketio.origin_refused at=connect")
                raise SocketRefused(
                    "This page's origin may not use the chat: add it to allowed_origins "
                    "(or CORS_ORIGINS)."
                )
            if not self.jwt_key:
                return True
            token = auth.get("token") if isinstance(auth, dict) else None
            payload = None
            if isinstance(token, str):
                payload = rasa.core.channels.channel.decode_bearer_token(
                    token, self.jwt_key, self.jwt_algorithm
                )
            return bool(payload)

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: str, data: Any = None) -> None:
            environ = sio.get_environ(sid, namespace=self.namespace)
            if not self.origin_allowed(environ):
                logger.info("channels.socketio.origin_refused at=session_request")
                await self._error(sio, sid, ORIGIN_REFUSED)
                return
            asked = data.get("session_id") if isinstance(data, dict) else None
            if self.signer.valid(asked):
                session_id = asked
            else:
                client = client_address(environ)
                wait = self.session_limiter.try_acquire(client)
                if wait:
                    seconds = retry_after(wait)
                    logger.info(
                        "channels.socketio.session_rate_limited client=%s", sender_ref(client)
                    )
                    await self._error(
                        sio,
                        sid,
                        Rejected(
                            429,
                            "session_rate_limited",
                            f"Too many new chat sessions from this address: wait {seconds} s "
                            "and reconnect, or resume the session you have.",
                            {"retry_after": str(seconds)},
                        ),
                    )
                    return
                session_id = self.signer.issue()
            if self.session_persistence:
                await sio.enter_room(sid, session_id, namespace=self.namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: str, data: Any = None) -> None:
            try:
                await self._handle(sio, sid, data, on_new_message)
            except Rejected as rejected:
                logger.info(
                    "channels.socketio.rejected status=%d code=%s", rejected.status, rejected.code
                )
                await self._error(sio, sid, rejected)
            except Exception as exc:
                logger.error(
                    "channels.socketio.internal_error error=%s\n%s", type(exc).__name__, frames(exc)
                )
                await self._error(
                    sio,
                    sid,
                    Rejected(
                        500,
                        "internal_error",
                        "The assistant could not handle this message because of an internal "
                        "error. Please try again.",
                    ),
                )

        return bp

    async def _error(self, sio: AsyncServer, sid: str, rejected: Rejected) -> None:
        body = {"status": rejected.status, **rejected.body["error"], **rejected.headers}
        await sio.emit(ERROR_EVENT, body, room=sid, namespace=self.namespace)

    async def _handle(
        self, sio: AsyncServer, sid: str, data: Any, on_new_message: OnNewMessage
    ) -> None:
        chat = parse_socket_message(data, self.options, self.metadata_key or "metadata")
        if self.session_persistence:
            if not self.signer.valid(chat.session_id):
                raise Rejected(
                    400,
                    "invalid_session",
                    "Unknown session: emit session_request and use the id of session_confirm.",
                )
            sender = str(chat.session_id)
            if sender not in sio.rooms(sid, namespace=self.namespace):
                await sio.enter_room(sid, sender, namespace=self.namespace)
        else:
            sender = sid
        wait = self.limiter.try_acquire(sender)
        if wait:
            seconds = retry_after(wait)
            logger.info("channels.socketio.rate_limited sender=%s", sender_ref(sender))
            raise Rejected(
                429,
                "rate_limited",
                f"Too many messages: wait {seconds} s before sending the next one.",
                {"retry_after": str(seconds)},
            )
        output = CountingOutput(SocketIOOutput(sio, self.bot_message_evt))
        message = UserMessage(
            chat.message,
            output,
            sender,
            input_channel=self.name(),
            metadata=chat.metadata,
        )
        await sio.emit(TYPING_EVENT, {"typing": True}, room=sender, namespace=self.namespace)
        try:
            await self.turns.run_answered(
                on_new_message,
                message,
                output,
                self.agent,
                lambda text: output.inner.send_text_message(sender, text),
            )
        finally:
            await sio.emit(TYPING_EVENT, {"typing": False}, room=sender, namespace=self.namespace)


class _ClientErrorLogger(logging.LoggerAdapter):
    """python-socketio/engineio's logger, without tracebacks for what a client sent.

    A malformed frame makes those libraries log a traceback of their own parser (and a client
    can send one per message): one warning line is enough, and nothing of the frame is logged.
    """

    def __init__(self, inner: logging.Logger) -> None:
        if inner.level == logging.NOTSET:  # the libraries' own default: warnings and errors
            inner.setLevel(logging.WARNING)
        super().__init__(inner, {})

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Log ``msg`` as a warning without the traceback (it points into the library)."""
        kwargs.pop("exc_info", None)
        self.warning("%s (malformed client input)", msg, **kwargs)


def _page_file(name: str) -> HTTPResponse:
    if name not in PAGE_FILES:
        return response.json(
            {"error": {"code": "not_found", "message": "No such file of the chat page."}},
            status=404,
        )
    body = resources.files("components.channels.webchat").joinpath(name).read_bytes()
    return response.raw(
        body,
        content_type=PAGE_FILES[name],
        headers={
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; "
            "img-src 'self' data:; style-src 'self'; script-src 'self'",
        },
    )
