"""Action-server start-up: check the shared secret on every call, mask logs, warm up services.

Attached by rasa-sdk's plugin hook (``rasa_sdk_plugins``). Every request to ``/webhook`` and
``/actions`` must carry the header ``X-Kefu-Action-Secret`` with the value of
``KEFU_ACTION_SECRET`` (the Rasa server sends it: ``endpoints.yml`` → ``action_endpoint.headers``);
anything else is answered 401 before an action runs. Without ``KEFU_ACTION_SECRET`` the server
refuses to start (``make run``/``make serve`` generate one in ``KEFU_HOME/secrets.env``).
``/health`` stays open for load balancers. At start-up, handoffs the Rasa server queued while
actions failed become tickets. ``KEFU_WARMUP=0`` skips the warm-up (tests).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from typing import Any

from actions.tickets import import_queued_handoffs
from components.errors import ConfigError
from components.privacy import log_masking
from components.services import get_services

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Kefu-Action-Secret"
SECRET_ENV = "KEFU_ACTION_SECRET"
PROTECTED = ("/webhook", "/actions")
MIN_SECRET_CHARS = 16


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
    from sanic.exceptions import PayloadTooLarge

    secret = action_secret().encode()
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

    @app.middleware("request")
    async def _check_secret(request: Any) -> Any:
        if not request.path.startswith(PROTECTED):
            return None
        given = (request.headers.get(SECRET_HEADER) or "").encode()
        if hmac.compare_digest(given, secret):
            return None
        logger.warning("actions.rejected reason=bad_secret path=%s", request.path)
        return response.json(
            {
                "error": "unauthorized",
                "message": f"this action server only answers calls carrying {SECRET_HEADER}",
            },
            status=401,
        )

    @app.exception(PayloadTooLarge)
    async def _payload_too_large(request: Any, exception: Exception) -> Any:
        return too_large(int(request.app.config.REQUEST_MAX_SIZE))

    @app.exception(Exception)
    async def _failed(request: Any, exception: Exception) -> Any:
        # replaces rasa-sdk's handler, whose 500 echoes the whole request (raw sender id and
        # message) back to Rasa, which then logs it with the exception
        logger.error("actions.failed path=%s error=%s", request.path, type(exception).__name__)
        return response.json(
            {"error": "action_failed", "message": f"the action raised {type(exception).__name__}"},
            status=500,
        )

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
