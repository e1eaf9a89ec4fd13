"""In-process generation with a local transformers causal LM (default: bundled SmolLM2)."""

from __future__ import annotations

import copy
import logging
import threading
import time
import warnings
from collections import OrderedDict
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

    The key/value cache of a chat's system message is kept (``prefix_cache`` entries, LRU):
    the NLG, the knowledge composer and the intent prompts all start with a fixed system text,
    so each call only prefills the turn-specific tokens.

    Args:
        model_path: Local model folder; None = the bundled SmolLM2, converted on first use.
        threads: torch intra-op threads (None leaves torch's default).
        quantize: ``int8`` (default) or ``none`` (plain fp32).
        prefix_cache: System-message KV caches kept (0 turns prefix caching off).
    """

    name = "transformers"

    def __init__(
        self,
        model_path: str | None = None,
        threads: int | None = None,
        quantize: str = "int8",
        prefix_cache: int = 8,
    ) -> None:
        if quantize not in QUANTIZE:
            raise ConfigError("quantize", quantize, f"one of {QUANTIZE}", component="llm")
        if not isinstance(prefix_cache, int) or prefix_cache < 0:
            raise ConfigError("prefix_cache", prefix_cache, "an integer >= 0", component="llm")
        self.model_path = model_path
        self.threads = threads
        self.quantize = quantize
        self.prefix_cache = prefix_cache
        # system text -> (its token ids, its KV cache)
        self._prefixes: OrderedDict[str, tuple[list[int], object]] = OrderedDict()
        self.prefix_hits = 0
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
        from transformers import StoppingCriteria

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

        kwargs = _generation_kwargs(
            max_new_tokens, temperature, _Stop(), tokenizer.pad_token_id or tokenizer.eos_token_id
        )
        with self._lock, torch.inference_mode():
            cached, cached_tokens = self._prefix_kv(messages, inputs["input_ids"])
            if cached is not None:
                kwargs["past_key_values"] = cached
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
            extra={
                "prompt_tokens": int(prompt_len),
                "first_token_s": first_token.get("s"),
                "cached_prefix_tokens": cached_tokens,
            },
        )

    def generate_batch(
        self,
        chats: list[list[Message]],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        deadline: float | None = None,
    ) -> list[Generation]:
        """Decode all chats in one left-padded batch (see :meth:`LLMBackend.generate_batch`).

        One forward pass per step serves every sequence, so on CPU the batch's total tokens/s
        is well above one-at-a-time. Stop strings are cut afterwards; the deadline stops the
        whole batch. A single chat goes through :meth:`generate` (prefix cache included).
        """
        import torch
        from transformers import StoppingCriteria

        if len(chats) <= 1:
            return [
                self.generate(
                    c,
                    max_new_tokens=max_new_tokens,
                    temperature=temperature,
                    stop=stop,
                    deadline=deadline,
                )  # fmt: skip
                for c in chats
            ]
        self._ensure_loaded()
        tokenizer, model = self._tokenizer, self._model
        started = time.monotonic()
        prompts = [
            tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
            for c in chats
        ]
        side = tokenizer.padding_side
        tokenizer.padding_side = "left"
        try:
            inputs = tokenizer(prompts, return_tensors="pt", padding=True)
        finally:
            tokenizer.padding_side = side
        width = inputs["input_ids"].shape[1]
        late = {"value": False}

        class _Deadline(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kw: object) -> bool:
                if deadline is not None and time.monotonic() > deadline:
                    late["value"] = True
                    return True
                return False

        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        kwargs = _generation_kwargs(max_new_tokens, temperature, _Deadline(), pad)
        with self._lock, torch.inference_mode():
            output = model.generate(**inputs, **kwargs)
        latency = time.monotonic() - started
        results = []
        eos = tokenizer.eos_token_id
        for row in range(len(chats)):
            tokens = output[row, width:].tolist()
            if eos in tokens:
                tokens = tokens[: tokens.index(eos)]
                reason = "eos"
            else:
                reason = "deadline" if late["value"] else "max_tokens"
            text = tokenizer.decode(tokens, skip_special_tokens=True)
            for s in stop or []:
                if s in text:
                    text, reason = text.split(s, 1)[0], "stop_string"
            prompt_tokens = int(inputs["attention_mask"][row].sum())
            results.append(
                Generation(
                    text=text.strip(),
                    backend=self.name,
                    latency_s=latency,
                    new_tokens=len(tokens),
                    stopped_by=reason,
                    extra={"prompt_tokens": prompt_tokens, "batch_size": len(chats)},
                )
            )
        return results

    def _prefix_kv(self, messages: list[Message], input_ids) -> tuple[object | None, int]:
        """A private copy of the system message's KV cache and its length in tokens.

        Computed on first sight and kept (LRU); ``(None, 0)`` when caching is off, the chat has
        no system message, or the prompt's tokens do not start with the system message's.
        Runs under the backend lock.
        """
        if not self.prefix_cache or not messages or messages[0].get("role") != "system":
            return None, 0
        import torch
        from transformers import DynamicCache

        key = messages[0].get("content", "")
        entry = self._prefixes.get(key)
        if entry is None:  # tokenised and prefilled once per system text
            text = self._tokenizer.apply_chat_template(messages[:1], tokenize=False)
            entry = (self._tokenizer(text)["input_ids"], None)
        prefix, cache = entry
        ids = input_ids[0].tolist()
        if len(prefix) >= len(ids) or ids[: len(prefix)] != prefix:
            return None, 0
        if cache is None:
            cache = DynamicCache()
            self._model(input_ids=torch.tensor([prefix]), past_key_values=cache, use_cache=True)
            self._prefixes[key] = (prefix, cache)
            while len(self._prefixes) > self.prefix_cache:
                self._prefixes.popitem(last=False)
        else:
            self.prefix_hits += 1
        self._prefixes.move_to_end(key)
        return copy.deepcopy(cache), len(prefix)


def _generation_kwargs(
    max_new_tokens: int, temperature: float, criterion, pad_token_id: int
) -> dict:
    """``generate()`` settings shared by single and batched calls: greedy at temperature 0,
    nucleus sampling (top-p 0.9) above it."""
    from transformers import StoppingCriteriaList

    kwargs = {
        "max_new_tokens": max_new_tokens,
        "stopping_criteria": StoppingCriteriaList([criterion]),
        "pad_token_id": pad_token_id,
    }
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature, top_p=0.9)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return kwargs
