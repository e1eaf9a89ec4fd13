"""In-process generation with a local transformers causal LM (default: bundled SmolLM2)."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from pathlib import Path

from components.errors import ConfigError, ModelNotFoundError
from components.llm.base import Generation, LLMBackend, Message

logger = logging.getLogger(__name__)

QUANTIZE = ("int8", "none")


_TRANSFORMERS_NAMES = (
    "AutoConfig",
    "AutoModel",
    "AutoModelForCausalLM",
    "AutoTokenizer",
    "PreTrainedTokenizerFast",
    "StoppingCriteria",
    "StoppingCriteriaList",
)


def preload_transformers() -> None:
    """Import transformers' lazy attributes on the calling thread.

    transformers resolves ``from transformers import X`` lazily; when a background thread (the
    LLM warm-up) and the main thread (Rasa loading the intent model) do that at the same time,
    Python's import deadlock avoidance can hand one of them a half-initialised module and the
    import fails ("cannot import name 'AutoConfig'"). Call this before starting such a thread.
    """
    import transformers

    for name in _TRANSFORMERS_NAMES:
        getattr(transformers, name)


class TransformersBackend(LLMBackend):
    """Greedy or sampled generation with ``AutoModelForCausalLM`` on the CPU.

    By default the linear layers run as dynamically quantised int8 (weights int8, activations
    quantised per call): on 2 CPU cores SmolLM2-135M decodes ~1.9x faster than fp32 (see
    ``benchmarks/llm.py``), and the NLG's fact checks guard the output either way.

    Args:
        model_path: Local model folder; None = the bundled SmolLM2, converted on first use.
        threads: torch intra-op threads (None leaves torch's default).
        quantize: ``int8`` (default) or ``none`` (plain fp32).
    """

    name = "transformers"

    def __init__(
        self, model_path: str | None = None, threads: int | None = None, quantize: str = "int8"
    ) -> None:
        if quantize not in QUANTIZE:
            raise ConfigError("quantize", quantize, f"one of {QUANTIZE}", component="llm")
        self.model_path = model_path
        self.threads = threads
        self.quantize = quantize
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the weights and run a one-token generation."""
        self._ensure_loaded()
        self.generate([{"role": "user", "content": "hi"}], max_new_tokens=1)

    def _ensure_loaded(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from components.model_prep import smollm2_path

            path = Path(self.model_path) if self.model_path else smollm2_path()
            if not (path / "config.json").is_file():
                raise ModelNotFoundError(
                    f"no causal LM at {path}",
                    hint="set llm.model_path to a local Hugging Face model folder",
                    path=str(path),
                )
            if self.threads:
                torch.set_num_threads(int(self.threads))
            started = time.monotonic()
            self._tokenizer = AutoTokenizer.from_pretrained(str(path))
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
            model.eval()
            if self.quantize == "int8":
                with warnings.catch_warnings():  # torch points to torchao; the API still works
                    warnings.simplefilter("ignore")
                    model = torch.ao.quantization.quantize_dynamic(
                        model, {torch.nn.Linear}, dtype=torch.qint8
                    )
            self._model = model
            logger.info(
                "llm.loaded backend=transformers quantize=%s seconds=%.1f",
                self.quantize,
                time.monotonic() - started,
            )

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
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        self._ensure_loaded()
        tokenizer, model = self._tokenizer, self._model
        started = time.monotonic()
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = tokenizer(prompt, return_tensors="pt")
        prompt_len = inputs["input_ids"].shape[1]
        reason = {"value": "eos"}
        first_token = {}

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kw: object) -> bool:
                first_token.setdefault("s", time.monotonic() - started)
                if deadline is not None and time.monotonic() > deadline:
                    reason["value"] = "deadline"
                    return True
                if stop:
                    tail = tokenizer.decode(
                        input_ids[0, prompt_len:][-16:], skip_special_tokens=True
                    )
                    if any(s in tail for s in stop):
                        reason["value"] = "stop_string"
                        return True
                return False

        kwargs = {
            "max_new_tokens": max_new_tokens,
            "stopping_criteria": StoppingCriteriaList([_Stop()]),
            "pad_token_id": tokenizer.pad_token_id or tokenizer.eos_token_id,
        }
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=0.9)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with self._lock, torch.inference_mode():
            output = model.generate(**inputs, **kwargs)
        new_tokens = output[0, prompt_len:]
        text = tokenizer.decode(new_tokens, skip_special_tokens=True)
        if stop:
            for s in stop:
                if s in text:
                    text = text.split(s, 1)[0]
        if reason["value"] == "eos" and len(new_tokens) >= max_new_tokens:
            reason["value"] = "max_tokens"
        return Generation(
            text=text.strip(),
            backend=self.name,
            latency_s=time.monotonic() - started,
            new_tokens=int(len(new_tokens)),
            stopped_by=reason["value"],
            extra={"prompt_tokens": int(prompt_len), "first_token_s": first_token.get("s")},
        )
