"""Rasa adapter: Slack's Events API and interactivity, signed, deduplicated, never too slow.

Register it in ``credentials.yml`` instead of ``slack:`` (tokens from the environment)::

    components.channels.slack.GuardedSlackInput:
      slack_token: ${SLACK_BOT_TOKEN}
      slack_signing_secret: ${SLACK_SIGNING_SECRET}
      use_threads: true

Its name stays ``slack`` (URL ``/webhooks/slack/webhook``, for both the Events API and
interactivity). Compared with Rasa's channel:

* every request's signature is checked before its body is parsed (401 when it is not Slack's);
  malformed bodies get a 400 with a JSON error, never a 500 (:mod:`.platforms`);
* Slack gets its 200 at once and the turn runs in the background, so a slow LLM reply never
  triggers Slack's 3-second retries; a retry (``X-Slack-Retry-Num``) of an event this process
  has seen, or that is already in the tracker store (another replica finished it), is
  acknowledged with ``X-Slack-No-Retry: 1`` and not processed twice (a retry reaching another
  replica while the first turn still runs there is not caught: Rasa stores the turn at its end);
* messages over ``max_message_chars`` are refused, senders rate limited (:mod:`.limits`);
* a turn without a reply gets the same apology as on REST (:mod:`.turns`);
* ``api_url`` points the bot's Web API calls elsewhere (GovSlack, a test double).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.slack import SlackBot, SlackInput
from rasa.shared.core.events import UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from slack_sdk.web.async_client import AsyncWebClient

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
from components.errors import ConfigError, StoreUnavailable

logger = logging.getLogger(__name__)

COMPONENT = "channels.slack"
#: Rasa's own keys of the ``slack`` block.
RASA_KEYS = (
    "slack_token",
    "slack_channel",
    "proxy",
    "slack_retry_reason_header",
    "slack_retry_number_header",
    "errors_ignore_retry",
    "use_threads",
    "slack_signing_secret",
    "conversation_granularity",
)
SEEN_EVENTS = 10_000


class GuardedSlackBot(SlackBot):
    """Rasa's Slack output channel with a configurable Web API base URL."""

    def __init__(
        self,
        token: str,
        slack_channel: str | None = None,
        thread_id: str | None = None,
        proxy: str | None = None,
        api_url: str | None = None,
    ) -> None:
        super().__init__(token, slack_channel, thread_id, proxy)
        if api_url:
            self.client = AsyncWebClient(token, base_url=api_url.rstrip("/") + "/", proxy=proxy)


class GuardedSlackInput(AppAgent, SlackInput):
    """Rasa's Slack channel, hardened (see the module docstring).

    Args:
        options: Limits shared with the REST channel (``max_message_chars``, rates ...).
        api_url: Slack Web API base URL (None: ``https://slack.com/api/``).
        **rasa_options: Rasa's own ``slack`` keys (:data:`RASA_KEYS`).
    """

    def __init__(
        self, options: RestOptions | None = None, api_url: str | None = None, **rasa_options: Any
    ) -> None:
        if not rasa_options.get("slack_token") or not rasa_options.get("slack_signing_secret"):
            raise ConfigError(
                "slack_token/slack_signing_secret",
                "(unset)",
                "both set (e.g. ${SLACK_BOT_TOKEN}, ${SLACK_SIGNING_SECRET} from the environment)",
                component=COMPONENT,
            )
        rasa_options.setdefault("slack_retry_reason_header", "x-slack-retry-reason")
        rasa_options.setdefault("slack_retry_number_header", "x-slack-retry-num")
        super().__init__(**rasa_options)
        self.options = options or RestOptions()
        self.api_url = api_url
        self.limiter = self.options.rate_limiter()
        self.turns = TurnGuard.for_channel("slack", self.options)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task] = set()

    @classmethod
    def name(cls) -> str:
        """``slack``: the webhook URL stays Rasa's."""
        return "slack"

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any] | None) -> GuardedSlackInput:
        """The channel configured by its ``credentials.yml`` block.

        Raises:
            ConfigError: On an unknown key, a bad value or a missing token or secret.
        """
        credentials = credentials_dict(credentials, COMPONENT)
        rasa_options = {k: credentials.pop(k) for k in list(credentials) if k in RASA_KEYS}
        api_url = credentials.pop("api_url", None)
        if api_url is not None and not (
            isinstance(api_url, str) and api_url.startswith(("http://", "https://"))
        ):
            raise ConfigError("api_url", api_url, "an http(s) URL", component=COMPONENT)
        options = RestOptions.from_credentials(credentials, {*RASA_KEYS, "api_url"}, COMPONENT)
        return cls(options, api_url, **rasa_options)

    def get_output_channel(
        self, channel: str | None = None, thread_id: str | None = None
    ) -> GuardedSlackBot:
        """The bot that replies in ``channel`` (and ``thread_id`` when threads are on)."""
        return GuardedSlackBot(
            self.slack_token, channel or self.slack_channel, thread_id, self.proxy, self.api_url
        )

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """The health route and the webhook (events and interactivity)."""
        bp = Blueprint("slack_webhook", __name__)

        @bp.listener("before_server_start")
        async def remember_app(app: Any, _loop: Any) -> None:
            self.remember_app(app)

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            try:
                return await self._webhook(request, on_new_message)
            except Rejected as rejected:
                logger.info(
                    "channels.slack.rejected status=%d code=%s", rejected.status, rejected.code
                )
                return response.json(rejected.body, status=rejected.status)
            except Exception as exc:
                logger.error(
                    "channels.slack.internal_error error=%s\n%s", type(exc).__name__, frames(exc)
                )
                # 200 with no-retry: a retry would fail the same way
                return response.json(
                    {"error": {"code": "internal_error", "message": "Not processed."}},
                    headers={"X-Slack-No-Retry": "1"},
                )

        return bp

    async def _webhook(self, request: Request, on_new_message: OnNewMessage) -> HTTPResponse:
        if len(request.body or b"") > self.options.body_limit:
            raise Rejected(413, "body_too_large", "The request body is too large.")
        if not self.is_request_from_slack_authentic(request):
            raise Rejected(
                401,
                "invalid_signature",
                "The request is not signed with this app's signing secret, or is older than "
                "5 minutes.",
            )
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip()
        if content_type == "application/json":
            body = platforms.loads_object(request.body, "request body")
            found = platforms.slack_event(body, self.options.max_message_chars)
        elif content_type == "application/x-www-form-urlencoded":
            found = platforms.slack_interaction(
                request.form.get("payload"), self.options.max_message_chars
            )
        else:
            raise Rejected(
                415, "unsupported_media_type", "Send application/json or a form payload."
            )
        if isinstance(found, platforms.Challenge):
            return response.json({"challenge": found.value})
        if isinstance(found, platforms.Ignored):
            return response.text("ignored: " + found.reason)
        if found.kind == "channel" and found.chat != self.slack_channel:
            return response.text("ignored: channel not supported")
        retry = request.headers.get(self.retry_num_header)
        if await self._already_handled(found, retry is not None):
            logger.info("channels.slack.duplicate retry=%s", retry)
            return response.text("", headers={"X-Slack-No-Retry": "1"})
        if self.limiter.try_acquire(found.user):
            logger.info("channels.slack.rate_limited sender=%s", sender_ref(found.user))
            return response.text("rate limited", headers={"X-Slack-No-Retry": "1"})
        task = asyncio.create_task(self._turn(found, on_new_message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return response.text("")

    async def _already_handled(self, found: platforms.Incoming, is_retry: bool) -> bool:
        """Whether this delivery was processed here, or (for a retry) by any replica."""
        if found.event_id in self._seen:
            return True
        self._seen[found.event_id] = None
        if len(self._seen) > SEEN_EVENTS:
            self._seen.popitem(last=False)
        if not is_retry:
            return False
        store = getattr(self.agent, "tracker_store", None)
        if store is None:
            return False
        try:  # bounded: Slack wants its answer within 3 s
            tracker = await asyncio.wait_for(store.retrieve(self._conversation(found)), 1.0)
        except (Exception, StoreUnavailable) as exc:
            logger.warning("channels.slack.dedupe_unavailable error=%s", type(exc).__name__)
            return False
        return tracker is not None and any(
            isinstance(e, UserUttered) and e.message_id == found.event_id for e in tracker.events
        )

    def _conversation(self, found: platforms.Incoming) -> str:
        """``slack:`` + Rasa's conversation id (by sender, channel or thread granularity)."""
        return "slack:" + (
            self._get_conversation_id(found.user, found.chat, found.thread) or found.user
        )

    async def _turn(self, found: platforms.Incoming, on_new_message: OnNewMessage) -> None:
        thread = found.thread if self.use_threads else None
        output = CountingOutput(self.get_output_channel(found.chat, thread))
        text = self._sanitize_user_message(found.text, list(found.mentioned))
        message = UserMessage(
            text,
            output,
            self._conversation(found),
            input_channel=self.name(),
            message_id=found.event_id,
            metadata={"out_channel": found.chat, "thread_id": found.thread, "users": []},
        )
        await self.turns.run_answered(
            on_new_message,
            message,
            output,
            self.agent,
            lambda text: output.inner.send_text_message(found.chat, text),
        )
