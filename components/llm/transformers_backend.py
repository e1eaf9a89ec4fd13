"""In-process generation with a local transformers causal LM (default: bundled SmolLM2).

The backend tokenises, caches system-message prefixes and turns tokens into
:class:`~components.llm.base.Generation` objects; the decoding itself is delegated to one
:class:`DecoderPath`, chosen once when the model loads:

* :class:`LeanDecoderPath`: :class:`~components.llm.llama_decoder.LlamaDecoder` (Llama-family
  models, the default);
* :class:`GenerateDecoderPath`: transformers' ``model.generate()`` (every other architecture,
  and ``decoder="generate"``).
"""

from __future__ import annotations

import abc
import copy
import logging
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from components.errors import ConfigError, ModelNotFoundError
from components.llm.base import Generation, LLMBackend, Message

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, StoppingCriteria

    from components.llm.llama_decoder import KVCache, LlamaDecoder

logger = logging.getLogger(__name__)

QUANTIZE = ("int8", "none")
DECODERS = ("lean", "generate")
# chats run once at load to measure activation ranges for int8 smoothing (lean decoder)
CALIBRATION_CHATS = [
    [
        {"role": "system", "content": "You are a polite customer-service assistant. Keep facts."},
        {"role": "user", "content": "Where is my order KF100234? It was due on 3 May."},
    ],
    [{"role": "user", "content": "我的订单什么时候到？退款 25.50 元多久到账？"}],
    [{"role": "user", "content": "Can I return these shoes and get a refund to my card?"}],
    [
        {
            "role": "user",
            "content": "Rewrite politely: An agent will call you between 9:00 and 21:00.",
        }
    ],
]


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


class DecoderPath(abc.ABC):
    """How :class:`TransformersBackend` runs its loaded model: one implementation per path.

    The backend tokenises, holds the lock and ``torch.inference_mode()`` and post-processes the
    tokens; a path only turns token ids into new token ids. Implementations are internal to
    this module; :func:`select_decoder_path` picks one at load time.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def prefill(self, prefix: list[int]) -> Any:
        """Run a prompt prefix (a system message) once and return its key/value cache.

        Args:
            prefix: Token ids of the prefix, one sequence.

        Returns:
            A cache that :meth:`generate` accepts as ``prefix``; it is never modified there.
        """

    @abc.abstractmethod
    def generate(
        self,
        ids: list[int],
        prefix: Any | None,
        max_new_tokens: int,
        temperature: float,
        watch: _StopWatch,
    ) -> list[int]:
        """Decode one prompt.

        Args:
            ids: Token ids of the whole prompt.
            prefix: A :meth:`prefill` cache of the prompt's first tokens, or None.
            max_new_tokens: Upper bound on generated tokens.
            temperature: 0 for greedy decoding, else nucleus sampling (top-p 0.9).
            watch: Decides after each token whether to stop (EOS, deadline, stop strings).

        Returns:
            The generated token ids (the last may be EOS).
        """

    @abc.abstractmethod
    def generate_batch(
        self,
        inputs: Mapping[str, torch.Tensor],
        max_new_tokens: int,
        temperature: float,
        watch: _StopWatch,
    ) -> list[list[int]]:
        """Decode a left-padded batch, one forward pass per step for all rows.

        Args:
            inputs: The tokenizer's ``input_ids`` and ``attention_mask``, ``[batch, width]``.
            max_new_tokens: Upper bound on generated tokens per row.
            temperature: 0 for greedy decoding, else nucleus sampling (top-p 0.9).
            watch: Its deadline stops the whole batch.

        Returns:
            The generated token ids of each row, in order; a row may run on after its EOS.
        """


class LeanDecoderPath(DecoderPath):
    """Decoding with :class:`~components.llm.llama_decoder.LlamaDecoder` (no ``generate()``).

    Args:
        decoder: The lean decoder built from the loaded model.
        tokenizer: The model's tokenizer (for the EOS id).
    """

    name = "lean"

    def __init__(self, decoder: LlamaDecoder, tokenizer: PreTrainedTokenizerBase) -> None:
        self.decoder = decoder
        self.tokenizer = tokenizer

    @classmethod
    def load(
        cls, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, int8: bool
    ) -> LeanDecoderPath:
        """Build the lean decoder from a loaded fp32 model.

        Args:
            model: The loaded ``AutoModelForCausalLM``.
            tokenizer: Its tokenizer (int8: tokenises the calibration chats).
            int8: Quantise the linear layers, smoothed on :data:`CALIBRATION_CHATS`.

        Returns:
            The path.

        Raises:
            UnsupportedModel: The architecture is not one the lean decoder covers.
        """
        import torch

        from components.llm.llama_decoder import LlamaDecoder

        calibration = None  # smoothing only matters for int8
        if int8:
            template = tokenizer.apply_chat_template
            calibration = [
                tokenizer(template(chat, tokenize=False))["input_ids"] for chat in CALIBRATION_CHATS
            ]
        with torch.inference_mode():
            decoder = LlamaDecoder(model, int8=int8, calibration=calibration)
        return cls(decoder, tokenizer)

    def prefill(self, prefix: list[int]) -> KVCache:
        """See :meth:`DecoderPath.prefill`."""
        import torch

        cache = self.decoder.new_cache(1, len(prefix))
        self.decoder.forward(torch.tensor([prefix]), cache, 0)
        return cache

    def generate(
        self,
        ids: list[int],
        prefix: KVCache | None,
        max_new_tokens: int,
        temperature: float,
        watch: _StopWatch,
    ) -> list[int]:
        """See :meth:`DecoderPath.generate`."""
        return self.decoder.decode(
            ids, max_new_tokens, _picker(temperature), watch.done, prefix=prefix
        )

    def generate_batch(
        self,
        inputs: Mapping[str, torch.Tensor],
        max_new_tokens: int,
        temperature: float,
        watch: _StopWatch,
    ) -> list[list[int]]:
        """See :meth:`DecoderPath.generate_batch`; each row keeps its own rotary positions."""
        import torch

        mask = inputs["attention_mask"].bool()
        batch, width = mask.shape
        key_mask = torch.ones(batch, width + max_new_tokens, dtype=torch.bool)
        key_mask[:, :width] = mask
        positions = (mask.long().cumsum(1) - 1).clamp(min=0)
        cache = self.decoder.new_cache(batch, width + max_new_tokens)
        logits = self.decoder.forward(inputs["input_ids"], cache, 0, positions, key_mask)
        following = positions[:, -1:] + 1
        pick, eos = _picker(temperature), self.tokenizer.eos_token_id
        rows: list[list[int]] = [[] for _ in range(batch)]
        for step in range(max_new_tokens):
            picked = [pick(logits[r]) for r in range(batch)]
            for r, token in enumerate(picked):
                if not rows[r] or rows[r][-1] != eos:
                    rows[r].append(token)
            if all(row[-1] == eos for row in rows) or watch.late():
                break
            if step + 1 < max_new_tokens:
                logits = self.decoder.forward(
                    torch.tensor(picked).view(batch, 1), cache, width + step, following, key_mask
                )
                following = following + 1
        return rows


class GenerateDecoderPath(DecoderPath):
    """Decoding with transformers' ``model.generate()`` (any causal LM architecture).

    Args:
        model: The loaded model (int8 through torch's dynamic quantisation, or fp32).
        tokenizer: The model's tokenizer (for the pad and EOS ids).
    """

    name = "generate"

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model = model
        self.tokenizer = tokenizer

    @classmethod
    def load(
        cls, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, int8: bool
    ) -> GenerateDecoderPath:
        """Wrap a loaded fp32 model, quantising its linear layers dynamically with ``int8``.

        Args:
            model: The loaded ``AutoModelForCausalLM``.
            tokenizer: Its tokenizer.
            int8: Replace ``torch.nn.Linear`` layers by dynamically quantised int8 ones.

        Returns:
            The path.
        """
        if int8:
            import torch

            with warnings.catch_warnings():  # torch points to torchao; the API still works
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(
                    model, {torch.nn.Linear}, dtype=torch.qint8
                )
        return cls(model, tokenizer)

    def prefill(self, prefix: list[int]) -> Any:
        """See :meth:`DecoderPath.prefill` (the cache is a transformers ``DynamicCache``)."""
        import torch
        from transformers import DynamicCache

        cache = DynamicCache()
        self.model(input_ids=torch.tensor([prefix]), past_key_values=cache, use_cache=True)
        return cache

    def generate(
        self,
        ids: list[int],
        prefix: Any | None,
        max_new_tokens: int,
        temperature: float,
        watch: _StopWatch,
    ) -> list[int]:
        """See :meth:`DecoderPath.generate` (``generate()`` grows a copy of ``prefix``)."""
        import torch
        from transformers import StoppingCriteria

        prompt_len = len(ids)

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kw: object) -> bool:
                return watch.done(input_ids[0, prompt_len:].tolist())

        tokenizer = self.tokenizer
        kwargs = _generation_kwargs(
            max_new_tokens, temperature, _Stop(), tokenizer.pad_token_id or tokenizer.eos_token_id
        )
        if prefix is not None:
            kwargs["past_key_values"] = copy.deepcopy(prefix)
        input_ids = torch.tensor([ids])
        output = self.model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs
        )
        return output[0, prompt_len:].tolist()

    def generate_batch(
        self,
        inputs: Mapping[str, torch.Tensor],
        max_new_tokens: int,
        temperature: float,
        watch: _StopWatch,
    ) -> list[list[int]]:
        """See :meth:`DecoderPath.generate_batch`."""
        from transformers import StoppingCriteria

        class _Deadline(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kw: object) -> bool:
                return watch.late()

        tokenizer = self.tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        kwargs = _generation_kwargs(max_new_tokens, temperature, _Deadline(), pad)
        output = self.model.generate(**inputs, **kwargs)
        width = inputs["input_ids"].shape[1]
        return [output[row, width:].tolist() for row in range(output.shape[0])]


def select_decoder_path(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, quantize: str, decoder: str
) -> DecoderPath:
    """Choose and build the decoding path for a loaded model (once, at load time).

    Args:
        model: The loaded fp32 ``AutoModelForCausalLM``.
        tokenizer: Its tokenizer.
        quantize: One of :data:`QUANTIZE`.
        decoder: One of :data:`DECODERS`; ``lean`` falls back to ``generate()`` for
            architectures the lean decoder does not cover.

    Returns:
        A :class:`LeanDecoderPath` or a :class:`GenerateDecoderPath`.
    """
    int8 = quantize == "int8"
    if decoder == "lean":
        from components.llm.llama_decoder import UnsupportedModel

        try:
            return LeanDecoderPath.load(model, tokenizer, int8)
        except UnsupportedModel as exc:
            logger.info("llm.lean_decoder_unavailable reason=%s", exc)
    return GenerateDecoderPath.load(model, tokenizer, int8)


class TransformersBackend(LLMBackend):
    """Greedy or sampled generation with ``AutoModelForCausalLM`` on the CPU.

    By default the linear layers run as int8 (weights int8, activations quantised per call),
    and Llama-family models (SmolLM2, Llama, Mistral, Qwen2) decode through
    :class:`~components.llm.llama_decoder.LlamaDecoder` (fused int8 projections, a
    preallocated KV cache, no per-step ``generate()`` machinery): on 2 CPU cores SmolLM2-135M
    decodes several times faster than fp32 ``generate()`` (see ``benchmarks/llm.py``); the NLG's
    fact checks guard the output either way. Other architectures, and ``decoder="generate"``,
    use ``model.generate()`` (int8 through torch's dynamic quantisation). The choice is made
    once at load time (:func:`select_decoder_path`).

    The key/value cache of a chat's system message is kept (``prefix_cache`` entries, LRU):
    the NLG, the knowledge composer and the intent prompts all start with a fixed system text,
    so each call only prefills the turn-specific tokens.

    Args:
        model_path: Local model folder; None = the bundled SmolLM2, converted on first use.
        threads: torch intra-op threads (None leaves torch's default).
        quantize: ``int8`` (default) or ``none`` (plain fp32).
        prefix_cache: System-message KV caches kept (0 turns prefix caching off).
        decoder: ``lean`` (default: the lean decoder where the architecture allows) or
            ``generate`` (always transformers' ``generate()``).
        adapter: ``auto`` (default: the shipped LoRA adapter on the bundled model, see
            :mod:`components.llm.adapter`), ``none``, or a PEFT adapter folder;
            merged into the weights at load time.

    Raises:
        ConfigError: For an unknown ``quantize`` or ``decoder``, or a bad ``prefix_cache``.
    """

    name = "transformers"

    def __init__(
        self,
        model_path: str | None = None,
        threads: int | None = None,
        quantize: str = "int8",
        prefix_cache: int = 8,
        decoder: str = "lean",
        adapter: str | None = "auto",
    ) -> None:
        if quantize not in QUANTIZE:
            raise ConfigError("quantize", quantize, f"one of {QUANTIZE}", component="llm")
        if decoder not in DECODERS:
            raise ConfigError("decoder", decoder, f"one of {DECODERS}", component="llm")
        if not isinstance(prefix_cache, int) or prefix_cache < 0:
            raise ConfigError("prefix_cache", prefix_cache, "an integer >= 0", component="llm")
        self.model_path = model_path
        self.threads = threads
        self.quantize = quantize
        self.prefix_cache = prefix_cache
        self.decoder = decoder
        self.adapter = adapter
        self.adapter_used: str | None = None  # the merged adapter's folder name, once loaded
        # system text -> (its token ids, its KV cache)
        self._prefixes: OrderedDict[str, tuple[list[int], Any]] = OrderedDict()
        self.prefix_hits = 0
        self._path: DecoderPath | None = None  # chosen once the model is loaded
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the weights and run a one-token generation."""
        self._ensure_loaded()
        self.generate([{"role": "user", "content": "hi"}], max_new_tokens=1)

    def _ensure_loaded(self) -> None:
        """Load the tokenizer and model and choose the decoding path (once, thread-safe).

        Raises:
            ModelNotFoundError: The model folder has no ``config.json``.
        """
        if self._path is not None:
            return
        with self._lock:
            if self._path is not None:
                return
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from components.llm.adapter import apply_adapter, resolve_adapter
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
            adapter = resolve_adapter(self.adapter, self.model_path)
            if adapter is not None:
                model = apply_adapter(model, adapter)
                self.adapter_used = adapter.name
            model.eval()
            decoding = select_decoder_path(model, self._tokenizer, self.quantize, self.decoder)
            self._path = decoding
            logger.info(
                "llm.loaded backend=transformers quantize=%s decoder=%s adapter=%s seconds=%.1f",
                self.quantize,
                decoding.name,
                self.adapter_used or "none",
                time.monotonic() - started,
            )

    @property
    def lean(self) -> bool:
        """Whether the loaded model runs on the lean decoder (False until it is loaded)."""
        return isinstance(self._path, LeanDecoderPath)

    def generate(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        deadline: float | None = None,
    ) -> Generation:
        """Generate a reply to one chat (see :meth:`LLMBackend.generate`).

        Args:
            messages: The chat so far, oldest first; a leading system message is cached.
            max_new_tokens: Upper bound on generated tokens.
            temperature: 0 means greedy decoding, else nucleus sampling (top-p 0.9).
            stop: Strings that end generation (not included in the text).
            deadline: ``time.monotonic()`` after which generation stops.

        Returns:
            The reply; ``extra`` holds ``prompt_tokens``, ``first_token_s`` and
            ``cached_prefix_tokens``.
        """
        import torch

        self._ensure_loaded()
        tokenizer = self._tokenizer
        started = time.monotonic()
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(prompt)["input_ids"]
        watch = _StopWatch(tokenizer, stop, deadline, started)
        with self._lock, torch.inference_mode():
            cached, cached_tokens = self._prefix_kv(messages, ids)
            new_tokens = self._path.generate(ids, cached, max_new_tokens, temperature, watch)
        if new_tokens and new_tokens[-1] == tokenizer.eos_token_id:
            new_tokens = new_tokens[:-1]
        text = tokenizer.decode(new_tokens, skip_special_tokens=True)
        for s in stop or []:
            if s in text:
                text = text.split(s, 1)[0]
        reason = watch.reason
        if reason == "eos" and len(new_tokens) >= max_new_tokens:
            reason = "max_tokens"
        return Generation(
            text=text.strip(),
            backend=self.name,
            latency_s=time.monotonic() - started,
            new_tokens=len(new_tokens),
            stopped_by=reason,
            extra={
                "prompt_tokens": len(ids),
                "first_token_s": watch.first_token_s,
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

        Args:
            chats: The chats, each oldest message first.
            max_new_tokens: Upper bound on generated tokens per chat.
            temperature: 0 means greedy decoding, else nucleus sampling (top-p 0.9).
            stop: Strings that end a reply (not included in its text).
            deadline: ``time.monotonic()`` after which the whole batch stops.

        Returns:
            One reply per chat, in order; ``extra`` holds ``prompt_tokens`` and
            ``batch_size``.
        """
        import torch

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
        tokenizer = self._tokenizer
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
        watch = _StopWatch(tokenizer, None, deadline, started)
        with self._lock, torch.inference_mode():
            rows = self._path.generate_batch(inputs, max_new_tokens, temperature, watch)
        latency = time.monotonic() - started
        results = []
        eos = tokenizer.eos_token_id
        for row, tokens in enumerate(rows):
            if eos in tokens:
                tokens = tokens[: tokens.index(eos)]
                reason = "eos"
            else:
                reason = "deadline" if watch.reason == "deadline" else "max_tokens"
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

    def _prefix_kv(self, messages: list[Message], ids: list[int]) -> tuple[Any | None, int]:
        """The system message's KV cache (read-only: callers copy it) and its length in tokens.

        Computed on first sight and kept (LRU); ``(None, 0)`` when caching is off, the chat has
        no system message, or the prompt's tokens do not start with the system message's.
        Runs under the backend lock.

        Args:
            messages: The chat; only a leading system message is cached.
            ids: Token ids of the whole prompt.

        Returns:
            The cache (None when there is none to use) and the number of tokens it covers.
        """
        if not self.prefix_cache or not messages or messages[0].get("role") != "system":
            return None, 0
        key = messages[0].get("content", "")
        entry = self._prefixes.get(key)
        if entry is None:  # tokenised and prefilled once per system text
            text = self._tokenizer.apply_chat_template(messages[:1], tokenize=False)
            entry = (self._tokenizer(text)["input_ids"], None)
        prefix, cache = entry
        if len(prefix) >= len(ids) or ids[: len(prefix)] != prefix:
            return None, 0
        if cache is None:
            cache = self._path.prefill(prefix)
            self._prefixes[key] = (prefix, cache)
            while len(self._prefixes) > self.prefix_cache:
                self._prefixes.popitem(last=False)
        else:
            self.prefix_hits += 1
        self._prefixes.move_to_end(key)
        return cache, len(prefix)


class _StopWatch:
    """Decides after each new token whether generation ends, and why.

    ``reason`` is ``eos`` until the deadline passes (``deadline``) or a stop string appears in
    the decoded tail (``stop_string``); an EOS token stops generation with ``reason`` left at
    ``eos`` (callers turn that into ``max_tokens`` when the budget ran out instead).

    Args:
        tokenizer: Decodes the tail for stop strings; gives the EOS id.
        stop: Stop strings (None or empty: none).
        deadline: ``time.monotonic()`` after which generation stops (None: no deadline).
        started: ``time.monotonic()`` when the call began (for ``first_token_s``).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        stop: list[str] | None,
        deadline: float | None,
        started: float,
    ) -> None:
        self.tokenizer = tokenizer
        self.stop = stop or []
        self.deadline = deadline
        self.started = started
        self.first_token_s: float | None = None
        self.reason = "eos"

    def late(self) -> bool:
        """True (and ``reason = "deadline"``) once the deadline has passed."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.reason = "deadline"
            return True
        return False

    def done(self, tokens: list[int]) -> bool:
        """Called with the tokens generated so far; True stops generation."""
        if self.first_token_s is None:
            self.first_token_s = time.monotonic() - self.started
        if tokens and tokens[-1] == self.tokenizer.eos_token_id:
            return True
        if self.late():
            return True
        if self.stop:
            tail = self.tokenizer.decode(tokens[-16:], skip_special_tokens=True)
            if any(s in tail for s in self.stop):
                self.reason = "stop_string"
                return True
        return False


def _picker(temperature: float) -> Callable[[torch.Tensor], int]:
    """Next-token choice from ``[vocab]`` logits.

    Argmax at temperature 0, else nucleus sampling (top-p 0.9): the same settings
    :func:`_generation_kwargs` gives ``generate()``.

    Args:
        temperature: 0 or less for greedy decoding.

    Returns:
        A function from ``[vocab]`` logits to a token id.
    """
    import torch

    if temperature <= 0:
        return lambda logits: int(logits.argmax())

    def sample(logits: torch.Tensor) -> int:
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        ordered, order = probs.sort(descending=True)
        keep = ordered.cumsum(0) - ordered < 0.9  # the smallest set reaching 0.9, at least one
        return int(order[torch.multinomial(ordered * keep, 1)])

    return sample


def _generation_kwargs(
    max_new_tokens: int, temperature: float, criterion: StoppingCriteria, pad_token_id: int
) -> dict[str, Any]:
    """``generate()`` settings shared by single and batched calls.

    Args:
        max_new_tokens: Upper bound on generated tokens.
        temperature: 0 for greedy decoding, else nucleus sampling (top-p 0.9).
        criterion: The stopping criterion (stop strings, EOS, deadline).
        pad_token_id: Id ``generate()`` pads finished sequences with.

    Returns:
        Keyword arguments for ``model.generate()``.
    """
    from transformers import StoppingCriteriaList

    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "stopping_criteria": StoppingCriteriaList([criterion]),
        "pad_token_id": pad_token_id,
    }
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature, top_p=0.9)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return kwargs
