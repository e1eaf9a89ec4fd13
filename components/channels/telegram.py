"""Rasa adapter: Telegram webhooks, authenticated by Telegram's secret token, never blocking.

Register it in ``credentials.yml`` instead of ``telegram:`` (tokens from the environment)::

    components.channels.telegram.GuardedTelegramInput:
      access_token: ${TELEGRAM_BOT_TOKEN}
      verify: ${TELEGRAM_BOT_NAME}
      webhook_url: https://bot.example.com/webhooks/telegram/webhook
      secret_token: ${TELEGRAM_SECRET_TOKEN}

Its name stays ``telegram`` (URL ``/webhooks/telegram/webhook``). Compared with Rasa's channel:

* the webhook is registered with a ``secret_token`` and every update must carry it in the
  ``X-Telegram-Bot-Api-Secret-Token`` header (401 otherwise) — Rasa's check asks Telegram who
  the bot is on every update, which proves nothing about the sender;
* malformed updates get a 400 with a JSON error, never a 500 (:mod:`.platforms`);
* Telegram gets its 200 at once and the turn runs in the background; a re-delivered update
  (same ``update_id``) reaching the same process is not processed twice;
* a button press (callback query) is answered, so the client stops its spinner, and becomes
  the customer's message; an edited message is handled as a new message;
* messages over ``max_message_chars`` are refused, senders rate limited (:mod:`.limits`);
* a turn without a reply gets the same apology as on REST (:mod:`.turns`);
* the webhook is registered after start-up (a failure is logged; ``/set_webhook`` retries it);
* ``api_url`` points the Bot API calls elsewhere (a local Bot API server, a test double).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from aiogram.bot.api import TelegramAPIServer
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.telegram import TelegramInput, TelegramOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from components.channels import platforms
from components.channels.options import RestOptions, credentials_dict
from components.channels.turns import (
    AppAgent,
    CountingOutput,
    OnNewMessage,
    TurnGuard,
    frames,
    sender_ref,
)
from components.channels.validation import Rejected
from components.errors import ConfigError

logger = logging.getLogger(__name__)

COMPONENT = "channels.telegram"
RASA_KEYS = ("access_token", "verify", "webhook_url")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SEEN_UPDATES = 10_000
PRODUCTION_API = "https://api.telegram.org"


class GuardedTelegramOutput(TelegramOutput):
    """Rasa's Telegram output channel with a configurable Bot API server."""

    def __init__(self, access_token: str, api_url: str | None = None) -> None:
        server = TelegramAPIServer.from_base(api_url or PRODUCTION_API)
        super(TelegramOutput, self).__init__(access_token, server=server)


class GuardedTelegramInput(AppAgent, TelegramInput):
    """Rasa's Telegram channel, hardened (see the module docstring).

    Args:
        access_token: The bot's token (from @BotFather).
        verify: The bot's username, checked once against ``getMe`` at start-up.
        webhook_url: The public URL Telegram posts updates to.
        secret_token: The secret Telegram sends with every update (1-256 of ``A-Za-z0-9_-``).
        options: Limits shared with the REST channel.
        api_url: Bot API base URL (None: ``https://api.telegram.org``).
    """

    def __init__(
        self,
        access_token: str,
        verify: str | None,
        webhook_url: str | None,
        secret_token: str,
        options: RestOptions | None = None,
        api_url: str | None = None,
    ) -> None:
        super().__init__(access_token, verify, webhook_url, debug_mode=False)
        self.secret_token = secret_token
        self.options = options or RestOptions()
        self.api_url = api_url
        self.limiter = self.options.rate_limiter()
        self.turns = TurnGuard.for_channel("telegram", self.options)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task] = set()
        self._out: GuardedTelegramOutput | None = None

    @classmethod
    def name(cls) -> str:
        """``telegram``: the webhook URL stays Rasa's."""
        return "telegram"

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any] | None) -> GuardedTelegramInput:
        """The channel configured by its ``credentials.yml`` block.

        Raises:
            ConfigError: On an unknown key, a bad value, or a missing token or secret.
        """
        credentials = credentials_dict(credentials, COMPONENT)
        rasa_options = {k: credentials.pop(k, None) for k in RASA_KEYS}
        secret = credentials.pop("secret_token", None)
        api_url = credentials.pop("api_url", None)
        token = rasa_options["access_token"]
        if not isinstance(token, str) or ":" not in token:
            raise ConfigError(
                "access_token",
                "(hidden)",
                "the bot token from @BotFather, e.g. ${TELEGRAM_BOT_TOKEN}",
                component=COMPONENT,
            )
        if not (
            isinstance(secret, str)
            and 0 < len(secret) <= 256
            and all(c.isascii() and (c.isalnum() or c in "_-") for c in secret)
        ):
            raise ConfigError(
                "secret_token",
                "(hidden)",
                "1-256 characters of A-Z a-z 0-9 _ - (e.g. ${TELEGRAM_SECRET_TOKEN})",
                component=COMPONENT,
            )
        if api_url is not None and not (
            isinstance(api_url, str) and api_url.startswith(("http://", "https://"))
        ):
            raise ConfigError("api_url", api_url, "an http(s) URL", component=COMPONENT)
        options = RestOptions.from_credentials(
            credentials, {*RASA_KEYS, "secret_token", "api_url"}, COMPONENT
        )
        return cls(
            token,
            rasa_options["verify"],
            rasa_options["webhook_url"],
            secret,
            options,
            api_url,
        )

    def get_output_channel(self) -> GuardedTelegramOutput:
        """The bot (one per process: it holds the HTTP session)."""
        if self._out is None:
            self._out = GuardedTelegramOutput(self.access_token, self.api_url)
        return self._out

    async def register_webhook(self) -> bool:
        """Tell Telegram where to post updates, with the secret it must send back."""
        if not self.webhook_url:
            return False
        out = self.get_output_channel()
        ok = await out.request(
            "setWebhook", {"url": self.webhook_url, "secret_token": self.secret_token}
        )
        me = await out.get_me()
        if self.verify and me.username != self.verify:
            logger.warning("channels.telegram.unexpected_bot_name (check 'verify')")
        return bool(ok)

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """The health route, the webhook and ``/set_webhook``."""
        bp = Blueprint("telegram_webhook", __name__)

        @bp.listener("after_server_start")
        async def start(app: Any, _loop: Any) -> None:
            self.remember_app(app)
            try:
                await self.register_webhook()
            except Exception as exc:
                logger.error(
                    "channels.telegram.webhook_not_set error=%s (retry: POST "
                    "/webhooks/telegram/set_webhook)",
                    type(exc).__name__,
                )

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/set_webhook", methods=["POST"])
        async def set_webhook(request: Request) -> HTTPResponse:
            if not self._authentic(request):
                return response.json(_unauthorised().body, status=401)
            try:
                ok = await self.register_webhook()
            except Exception as exc:
                return response.json(
                    {"error": {"code": "telegram_unreachable", "message": type(exc).__name__}},
                    status=502,
                )
            return response.json({"ok": ok})

        @bp.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            try:
                return await self._webhook(request, on_new_message)
            except Rejected as rejected:
                logger.info(
                    "channels.telegram.rejected status=%d code=%s", rejected.status, rejected.code
                )
                return response.json(rejected.body, status=rejected.status)
            except Exception as exc:
                logger.error(
                    "channels.telegram.internal_error error=%s\n%s",
                    type(exc).__name__,
                    frames(exc),
                )
                # 200: Telegram would re-deliver an update that fails the same way forever
                return response.json({"error": {"code": "internal_error"}})

        return bp

    def _authentic(self, request: Request) -> bool:
        sent = request.headers.get(SECRET_HEADER) or ""
        return hmac.compare_digest(sent.encode(), self.secret_token.encode())

    async def _webhook(self, request: Request, on_new_message: OnNewMessage) -> HTTPResponse:
        if not self._authentic(request):
            raise _unauthorised()
        if len(request.body or b"") > self.options.body_limit:
            raise Rejected(413, "body_too_large", "The request body is too large.")
        body = platforms.loads_object(request.body or b"", "update")
        found = platforms.telegram_update(body, self.options.max_message_chars)
        if isinstance(found, platforms.Ignored):
            return response.json({"ignored": found.reason})
        if found.event_id in self._seen:
            logger.info("channels.telegram.duplicate")
            return response.json({"duplicate": True})
        self._seen[found.event_id] = None
        if len(self._seen) > SEEN_UPDATES:
            self._seen.popitem(last=False)
        if self.limiter.try_acquire(found.chat):
            logger.info("channels.telegram.rate_limited sender=%s", sender_ref(found.chat))
            return response.json({"rate_limited": True})
        task = asyncio.create_task(self._turn(found, on_new_message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return response.json({"ok": True})

    async def _turn(self, found: platforms.Incoming, on_new_message: OnNewMessage) -> None:
        out = self.get_output_channel()
        if found.callback_id:
            try:
                await out.answer_callback_query(found.callback_id)
            except Exception as exc:
                logger.warning(
                    "channels.telegram.callback_not_answered error=%s", type(exc).__name__
                )
        output = CountingOutput(out, recipient=found.chat)
        message = UserMessage(
            found.text,
            output,
            f"telegram:{found.chat}",  # never a bare chat id (platforms.PLATFORM_PREFIXES)
            input_channel=self.name(),
            message_id=f"telegram:{found.event_id}",
            metadata={"telegram": {"kind": found.kind}},
        )
        await self.turns.run_answered(
            on_new_message,
            message,
            output,
            self.agent,
            lambda text: out.send_text_message(found.chat, text),
        )


def _unauthorised() -> Rejected:
    return Rejected(
        401,
        "invalid_secret_token",
        f"The {SECRET_HEADER} header does not match this bot's secret_token.",
    )
