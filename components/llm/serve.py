"""Serve the local model as an OpenAI-compatible endpoint, so several processes share one copy.

    python -m components.llm.serve --port 8008            # bundled SmolLM2, 127.0.0.1
    python -m components.llm.serve --model-path /models/qwen2.5-1.5b-instruct --threads 2

Then point the NLG (``endpoints.yml`` → ``nlg.llm``) and the action server at it::

    llm: {backend: openai, base_url: "http://127.0.0.1:8008/v1", model: kefu-local}

Routes: ``POST /v1/chat/completions`` (``messages``, ``max_tokens``, ``temperature``, ``stop``;
no streaming), ``GET /v1/models``, ``GET /health``. Errors use OpenAI's shape
``{"error": {"message", "type", "code"}}``: 400 for a bad request, 401 without the key (when
``--api-key-env`` names a set variable), 503 while loading, 504 on timeout, 500 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid
from typing import Any

from components.errors import KefuError, LLMTimeoutError
from components.llm.client import LLMClient
from components.llm.transformers_backend import DECODERS, QUANTIZE

logger = logging.getLogger(__name__)

MODEL_NAME = "kefu-local"
ROLES = {"system", "user", "assistant"}


class RequestError(ValueError):
    """A request the server cannot serve; ``str()`` is the message sent back."""


def parse_request(body: Any, max_tokens_limit: int = 1024) -> dict[str, Any]:
    """Validate a chat-completions body into generation arguments.

    Args:
        body: The decoded JSON body.
        max_tokens_limit: Largest ``max_tokens`` accepted.

    Returns:
        ``messages``, ``max_new_tokens``, ``temperature`` and ``stop`` for
        :meth:`~components.llm.client.LLMClient.agenerate`.

    Raises:
        RequestError: Naming the bad field.
    """
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise RequestError(f"messages[{i}].role must be one of {sorted(ROLES)}")
        if not isinstance(message.get("content"), str):
            raise RequestError(f"messages[{i}].content must be a string")
    if body.get("stream"):
        raise RequestError("streaming is not supported; send stream=false")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens", 64))
    if not isinstance(max_tokens, int) or not 1 <= max_tokens <= max_tokens_limit:
        raise RequestError(f"'max_tokens' must be an integer from 1 to {max_tokens_limit}")
    temperature = body.get("temperature", 0.0)
    if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise RequestError("'temperature' must be a number from 0 to 2")
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (
        not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop)
    ):
        raise RequestError("'stop' must be a string or a list of non-empty strings")
    return {
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "max_new_tokens": max_tokens,
        "temperature": float(temperature),
        "stop": stop,
    }


def _error(status: int, message: str, kind: str, code: str) -> Any:
    from sanic import response

    return response.json({"error": {"message": message, "type": kind, "code": code}}, status)


def create_app(client: LLMClient, api_key: str | None = None, timeout_s: float = 30.0) -> Any:
    """The sanic app serving ``client`` (one generation at a time, in a worker thread).

    Args:
        client: The client whose backend answers the requests.
        api_key: Key every request must send as ``Authorization: Bearer``; None: no key.
        timeout_s: Seconds per request, passed to the client per call.

    Returns:
        The (not yet running) ``sanic.Sanic`` app.
    """
    from sanic import Sanic, response

    app = Sanic(f"kefu_llm_{uuid.uuid4().hex[:8]}")
    app.config.MOTD = False
    state = {"ready": False}

    @app.listener("before_server_start")
    async def _load(app_: Any, loop: Any) -> None:
        client.warm_up()  # load before the first request, not during it
        state["ready"] = True
        logger.info("llm.serve.ready backend=%s", client.backend.name)
        print("[kefu] LLM server ready", file=sys.stderr, flush=True)

    def _authorised(request: Any) -> bool:
        return not api_key or request.headers.get("authorization", "") == f"Bearer {api_key}"

    @app.get("/health")
    async def health(request: Any) -> Any:
        return response.json({"status": "ok" if state["ready"] else "loading"})

    @app.get("/v1/models")
    async def models(request: Any) -> Any:
        if not _authorised(request):
            return _error(
                401, "missing or wrong API key", "authentication_error", "invalid_api_key"
            )
        return response.json(
            {"object": "list", "data": [{"id": MODEL_NAME, "object": "model", "owned_by": "kefu"}]}
        )

    @app.post("/v1/chat/completions")
    async def chat(request: Any) -> Any:
        if not _authorised(request):
            return _error(
                401, "missing or wrong API key", "authentication_error", "invalid_api_key"
            )
        if not state["ready"]:
            return _error(503, "the model is still loading", "server_error", "loading")
        try:
            body = request.json
        except Exception:
            return _error(400, "the body is not valid JSON", "invalid_request_error", "bad_json")
        try:
            args = parse_request(body)
        except RequestError as exc:
            return _error(400, str(exc), "invalid_request_error", "invalid_request")
        try:
            gen = await client.agenerate(args.pop("messages"), timeout_s=timeout_s, **args)
        except LLMTimeoutError:
            return _error(504, f"no reply within {timeout_s:.0f} s", "server_error", "timeout")
        except KefuError as exc:
            return _error(500, exc.message, "server_error", "generation_failed")
        finish = "length" if gen.stopped_by == "max_tokens" else "stop"
        prompt_tokens = int(gen.extra.get("prompt_tokens", 0))
        return response.json(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": MODEL_NAME,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": gen.text},
                        "finish_reason": finish,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": gen.new_tokens,
                    "total_tokens": prompt_tokens + gen.new_tokens,
                },
            }
        )

    return app


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the local backend and serve until interrupted.

    Args:
        argv: Command-line arguments (None: ``sys.argv[1:]``).

    Returns:
        The process exit status (2 for a bad port).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8008)
    parser.add_argument("--model-path", default=None, help="local model folder (default SmolLM2)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quantize", choices=QUANTIZE, default="int8")
    parser.add_argument("--decoder", choices=DECODERS, default="lean", help="transformers decoding")
    parser.add_argument(
        "--adapter", default="auto", help="LoRA adapter: auto (the shipped one), none, or a folder"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument(
        "--api-key-env", default="KEFU_LLM_SERVER_KEY", help="variable with the key to require"
    )
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        print(f"error: --port {args.port} is not a TCP port", file=sys.stderr)
        return 2
    from components.llm.transformers_backend import TransformersBackend

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    backend = TransformersBackend(
        model_path=args.model_path,
        threads=args.threads,
        quantize=args.quantize,
        decoder=args.decoder,
        adapter=args.adapter,
    )
    client = LLMClient(backend, timeout_s=args.timeout)
    app = create_app(client, os.environ.get(args.api_key_env) or None, args.timeout)
    app.run(host=args.host, port=args.port, access_log=False, workers=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
