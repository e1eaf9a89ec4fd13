"""Action-server start-up: check the shared secret on every call, mask logs, warm up services.

Attached by rasa-sdk's plugin hook (``rasa_sdk_plugins``). Every request to ``/webhook`` and
``/actions`` must carry the header ``X-Kefu-Action-Secret`` with the value of
``KEFU_ACTION_SECRET`` (the Rasa server sends it: ``endpoints.yml`` → ``action_endpoint.headers``);
anything else is answered 401 before an action runs. Without ``KEFU_ACTION_SECRET`` the server
refuses to start (``make run``/``make serve`` generate one in ``KEFU_HOME/secrets.env``).
``/health`` stays open for load balancers. A path that any decoding or normalisation would read
as one of these (``//webhook``, ``/%77ebhook``, ``/./webhook``, ``/Webhook`` ...) needs the secret
too, whether or not the router serves it.

Client errors keep their 4xx status with a JSON body ``{"error": code, "message": ...}``: an unknown
path is 404 ``not_found``, a wrong method 405 ``method_not_allowed``, and an action call that is not
a JSON object with a ``next_action`` string, a ``tracker`` object and (optionally) a ``domain``
object is 400 ``invalid_body`` before rasa-sdk reads it. Only a failing action is 500
``action_failed``. No answer echoes what the client sent.

At start-up the process creates files owner-only (umask 077) and tightens what ``KEFU_HOME``
already holds (:func:`components.paths.lock_down`); handoffs the Rasa server queued while actions
failed become tickets. ``KEFU_WARMUP=0`` skips the warm-up (tests).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import posixpath
import re
import zlib
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from actions.tickets import import_queued_handoffs
from components.errors import ConfigError
from components.paths import lock_down
from components.privacy import log_masking
from components.services import get_services

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Kefu-Action-Secret"
SECRET_ENV = "KEFU_ACTION_SECRET"
PROTECTED = ("/webhook", "/actions")
MIN_SECRET_CHARS = 16
OPEN = ("/health",)
#: A deflated action call may inflate to this many times the request size limit (then 413).
MAX_INFLATION = 16
CLIENT_ERROR_MESSAGES = {
    404: "no such endpoint: this server answers POST /webhook, GET /actions and GET /health",
    405: "this endpoint does not answer this method (see the Allow header)",
}


def normalised_path(path: str) -> str:
    """``path`` as the most lenient router or proxy could read it, to decide on the secret.

    Percent-escapes are decoded until none are left (``/%2577ebhook`` → ``/webhook``), backslashes
    become slashes, runs of slashes collapse, ``.``/``..`` segments resolve, parameters after ``;``
    drop and case folds.

    Args:
        path: The request path as received (without the query string).

    Returns:
        The normalised path, always starting with ``/``.
    """
    for _ in range(8):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    path = re.sub(r"/+", "/", "/" + path.replace("\\", "/"))
    path = posixpath.normpath(path).split(";", 1)[0]
    return path.casefold()


def needs_secret(path: str) -> bool:
    """Whether a request for ``path`` must carry the secret (the webhook, the action list)."""
    return normalised_path(path).startswith(PROTECTED)


def inflated_call(body: bytes, max_inflated: int) -> tuple[Any, str | None]:
    """A deflated action call (rasa-sdk inflates ``Content-Encoding: deflate``), parsed.

    Args:
        body: The raw request body.
        max_inflated: The most bytes it may inflate to.

    Returns:
        ``(call, None)``, or ``(None, reason)``: ``too_large`` (inflates past ``max_inflated``),
        ``bad_deflate`` or ``not_json``.
    """
    inflater = zlib.decompressobj()
    try:
        body = inflater.decompress(body, max_inflated)
    except zlib.error:
        return None, "bad_deflate"
    if inflater.unconsumed_tail:
        return None, "too_large"
    if not inflater.eof:
        return None, "bad_deflate"
    try:
        return json.loads(body), None
    except (ValueError, UnicodeDecodeError):
        return None, "not_json"


def invalid_action_call(call: Any) -> str | None:
    """Check a parsed action call the way rasa-sdk's ``/webhook`` is going to read it.

    Args:
        call: The parsed body (None: there was none).

    Returns:
        None when rasa-sdk can run the call; else why not: ``not_json``, ``not_an_object``,
        ``bad_next_action``, ``bad_tracker`` or ``bad_domain``.
    """
    if call is None:
        return "not_json"
    if not isinstance(call, dict):
        return "not_an_object"
    action = call.get("next_action")
    if action is None:
        return None  # rasa-sdk answers a call without an action itself (200, no events)
    if not isinstance(action, str):
        return "bad_next_action"
    if not isinstance(call.get("tracker"), dict):
        return "bad_tracker"
    if not isinstance(call.get("domain", {}), dict):
        return "bad_domain"
    return None


def action_secret() -> str:
    """The shared secret this action server checks.

    Raises:
        ConfigError: when ``KEFU_ACTION_SECRET`` is unset or shorter than 16 characters.
    """
    secret = os.environ.get(SECRET_ENV, "")
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(
            SECRET_ENV,
            "<unset>" if not secret else "<too short>",
            f"a secret of at least {MIN_SECRET_CHARS} characters shared with the Rasa server "
            "(make run/serve write one to KEFU_HOME/secrets.env; python -m "
            "components.tools.secrets PATH creates one)",
            component="action server",
        )
    return secret


def attach(app: Any) -> None:
    """Register the secret check and the start-up listener on the action server's ``app``.

    Raises:
        ConfigError: when no usable ``KEFU_ACTION_SECRET`` is set or the ``kefu:`` settings are
            invalid (the server does not start).
    """
    from sanic import response
    from sanic.exceptions import PayloadTooLarge, SanicException

    secret = action_secret().encode()
    lock_down()  # before any log or database file of this process is created
    settings = get_services().settings  # a bad kefu: block stops the server here, named
    logger.info("actions.settings source=%s", settings.source or "defaults")

    def too_large(limit: int) -> Any:
        return response.json(
            {
                "error": "payload_too_large",
                "message": f"request bodies are limited to {limit} bytes",
            },
            status=413,
        )

    def client_error(status: int, headers: dict[str, str] | None = None) -> Any:
        code = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
        message = CLIENT_ERROR_MESSAGES.get(status, f"the request was refused ({code})")
        return response.json(
            {"error": code, "message": message}, status=status, headers=headers or None
        )

    @app.middleware("request")
    async def _check_secret(request: Any) -> Any:
        # also runs before a 404/405 is answered; then request.route is None
        if request.path in OPEN or not needs_secret(request.path):
            return None
        given = (request.headers.get(SECRET_HEADER) or "").encode()
        if not hmac.compare_digest(given, secret):
            logger.warning("actions.rejected reason=bad_secret")
            return response.json(
                {
                    "error": "unauthorized",
                    "message": f"this action server only answers calls carrying {SECRET_HEADER}",
                },
                status=401,
            )
        route = getattr(request, "route", None)
        if request.method != "POST" or getattr(route, "path", "").strip("/") != "webhook":
            return None
        limit = int(request.app.config.REQUEST_MAX_SIZE)
        declared = request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:  # before an empty, unread body says 400
            logger.warning("actions.rejected reason=too_large")
            return too_large(limit)
        if request.headers.get("Content-Encoding") == "deflate":
            call, reason = inflated_call(request.body or b"", limit * MAX_INFLATION)
        else:
            try:  # parsed once: Sanic keeps it, and rasa-sdk's webhook reads the same object
                call, reason = request.json, None
            except SanicException:
                call, reason = None, "not_json"
        reason = reason or invalid_action_call(call)
        if reason is None:
            return None
        logger.warning("actions.rejected reason=%s", reason)
        if reason == "too_large":
            return too_large(limit * MAX_INFLATION)
        return response.json(
            {
                "error": "invalid_body",
                "message": "an action call is a JSON object (optionally deflated) with a "
                "next_action string, a tracker object and a domain object",
            },
            status=400,
        )

    @app.exception(PayloadTooLarge)
    async def _payload_too_large(request: Any, exception: Exception) -> Any:
        return too_large(int(request.app.config.REQUEST_MAX_SIZE))

    @app.exception(Exception)
    async def _failed(request: Any, exception: Exception) -> Any:
        status = (
            getattr(exception, "status_code", 500) if isinstance(exception, SanicException) else 500
        )
        if 400 <= status < 500:  # not found, wrong method, unreadable body: the client's error
            logger.info("actions.client_error status=%d error=%s", status, type(exception).__name__)
            return client_error(status, getattr(exception, "headers", None))
        # replaces rasa-sdk's handler, whose 500 echoes the whole request (raw sender id and
        # message) back to Rasa, which then logs it with the exception
        route = getattr(getattr(request, "route", None), "path", None)
        logger.error("actions.failed route=%s error=%s", route, type(exception).__name__)
        return response.json(
            {"error": "action_failed", "message": f"the action raised {type(exception).__name__}"},
            status=500,
        )

    @app.listener("before_server_start")
    async def _lock_down(app: Any, loop: asyncio.AbstractEventLoop) -> None:
        lock_down()  # again in each worker process, before it opens a database

    @app.listener("after_server_start")
    async def _warm_up(app: Any, loop: asyncio.AbstractEventLoop) -> None:
        # rasa-sdk logs whole trackers at debug level; the same tokens as in storage
        log_masking.install(get_services().pii)
        try:
            created = import_queued_handoffs()
            if created:
                logger.info("handoff.imported tickets=%d", created)
        except Exception as exc:  # a broken ticket store must not stop the server
            logger.error("handoff.import_failed error=%s", type(exc).__name__)
        if os.environ.get("KEFU_WARMUP", "1") == "0":
            return
        from components.llm.transformers_backend import preload_transformers

        preload_transformers()  # a request thread may import it too; see its docstring
        # in the background: /health answers while the index and encoder load
        loop.run_in_executor(None, lambda: get_services().warm_up(knowledge=True))
        logger.info("actions.warm_up started=true")
