"""Action-server start-up: mask logs and warm the services up before the first request.

Attached by rasa-sdk's plugin hook (``rasa_sdk_plugins``). ``KEFU_WARMUP=0`` skips the warm-up
(the tests warm up explicitly).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from components.privacy import log_masking
from components.services import get_services

logger = logging.getLogger(__name__)


def attach(app: Any) -> None:
    """Register the start-up listener on the action server's Sanic ``app``."""

    @app.listener("after_server_start")
    async def _warm_up(app: Any, loop: asyncio.AbstractEventLoop) -> None:
        log_masking.install()  # rasa-sdk logs whole trackers at debug level
        if os.environ.get("KEFU_WARMUP", "1") == "0":
            return
        from components.llm.transformers_backend import preload_transformers

        preload_transformers()  # a request thread may import it too; see its docstring
        # in the background: /health answers while the index and encoder load
        loop.run_in_executor(None, lambda: get_services().warm_up(knowledge=True))
        logger.info("actions.warm_up started=true")
