"""Model folders of the joint classifier: create one on a pretrained encoder, save, load.

A saved classifier is a folder holding ``encoder/`` (the fine-tuned encoder and its tokenizer,
Hugging Face format, added characters included), ``heads.pt`` (intent head, tag head and the
embeddings of added characters) and ``labels.json`` (intents, tags, token limit, temperature
and the number of added characters).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerFast

from components.bio import bio_tags
from components.errors import ConfigError, ModelNotFoundError
from components.nlu.joint_model import JointClassifier, JointIntentEntityModel, set_seed
from components.text import CJK, fold_for_model

logger = logging.getLogger(__name__)

_HINT = "set model_name_or_path to a local Hugging Face model folder"


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a *fast* tokenizer (offset mappings are required for exact entity spans).

    Args:
        path: A Hugging Face model folder.

    Returns:
        The tokenizer.

    Raises:
        ModelNotFoundError: when ``path`` holds no tokenizer.
        ConfigError: when only a slow tokenizer exists.
    """
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), use_fast=True)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"no tokenizer at {path}", hint=_HINT, path=str(path)) from exc
    if not tokenizer.is_fast:
        raise ConfigError("model_name_or_path", str(path), "a model with a fast tokenizer")
    return tokenizer


def from_pretrained(
    encoder_path: str | Path,
    intents: list[str],
    entity_labels: list[str],
    max_length: int,
    dropout: float,
    seed: int,
    texts: Sequence[str] = (),
) -> JointClassifier:
    """Create an untrained classifier on a pretrained encoder.

    Args:
        encoder_path: A local Hugging Face encoder folder.
        intents: Intent names (the intent head's rows, in this order).
        entity_labels: Entity labels; the tags are their ``B-``/``I-`` tags and ``O``.
        max_length: Token limit per message.
        dropout: Dropout before both heads during training.
        seed: Seed for the heads' initial weights.
        texts: Training messages. CJK characters in them that the encoder's vocabulary
            lacks (an English encoder reads most Chinese characters as ``[UNK]``) become
            tokens of their own, with embeddings learnt in training and initialised at
            ``[UNK]``'s; without ``texts`` the vocabulary is left as is.

    Returns:
        The classifier (temperature 1).

    Raises:
        ModelNotFoundError: when ``encoder_path`` holds no tokenizer or no weights.
        ConfigError: when the encoder has only a slow tokenizer.
    """
    set_seed(seed)
    tokenizer = load_tokenizer(encoder_path)
    missing = unknown_characters(tokenizer, texts)
    if missing:
        tokenizer.add_tokens(missing)
        logger.info("joint_model.vocabulary_extended characters=%d", len(missing))
    try:
        encoder = AutoModel.from_pretrained(str(encoder_path))
    except OSError as exc:
        raise ModelNotFoundError(
            f"no encoder weights at {encoder_path}", hint=_HINT, path=str(encoder_path)
        ) from exc
    tags = bio_tags(entity_labels)
    model = JointIntentEntityModel(encoder, len(intents), len(tags), dropout, len(missing))
    if missing:
        with torch.no_grad():
            unk = encoder.get_input_embeddings().weight[tokenizer.unk_token_id]
            model.new_token_embeddings.weight.copy_(unk.expand(len(missing), -1))
    return JointClassifier(tokenizer, model, intents, tags, max_length)


def unknown_characters(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> list[str]:
    """CJK ideographs of ``texts`` that ``tokenizer`` turns into its unknown token, sorted.

    Only ideographs (the project's :data:`components.text.CJK`): BERT-style tokenizers
    split them into single characters anyway, so adding one changes no other token's split (an
    added kana, hangul or Latin letter would cut words apart).

    Args:
        tokenizer: The encoder's tokenizer.
        texts: Training messages.

    Returns:
        The characters to add to the vocabulary (none when the tokenizer has no unknown token).
    """
    unk = tokenizer.unk_token_id
    if unk is None:
        return []
    seen = sorted({ch for text in texts for ch in CJK.findall(fold_for_model(text))})
    if not seen:
        return []
    # tokenise each character as the model would (a SentencePiece vocabulary may know it only as
    # "▁字", which convert_tokens_to_ids would miss); only pure unknowns are added
    pieces = tokenizer(seen, add_special_tokens=False)["input_ids"]
    return [ch for ch, ids in zip(seen, pieces, strict=True) if ids == [unk]]


def save(classifier: JointClassifier, directory: Path) -> None:
    """Write encoder, tokenizer, heads and label vocabularies into ``directory``.

    Args:
        classifier: The (fine-tuned) classifier.
        directory: Target folder; created when missing.
    """
    model = classifier.model
    directory.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(directory / "encoder", safe_serialization=True)
    classifier.tokenizer.save_pretrained(directory / "encoder")
    heads = {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    torch.save(heads, directory / "heads.pt")
    meta = {
        "intents": classifier.intents,
        "tags": classifier.tags,
        "max_length": classifier.max_length,
        "temperature": classifier.temperature,
        "new_tokens": (
            0 if model.new_token_embeddings is None else model.new_token_embeddings.num_embeddings
        ),
    }
    (directory / "labels.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))


def load(directory: Path) -> JointClassifier:
    """Inverse of :func:`save`.

    Args:
        directory: A folder written by :func:`save`.

    Returns:
        The classifier, in evaluation mode.

    Raises:
        ModelNotFoundError: when the saved heads do not fit the saved label vocabularies.
    """
    meta = json.loads((directory / "labels.json").read_text())
    tokenizer = load_tokenizer(directory / "encoder")
    config = AutoConfig.from_pretrained(str(directory / "encoder"))
    encoder = AutoModel.from_pretrained(str(directory / "encoder"), config=config)
    model = JointIntentEntityModel(
        encoder, len(meta["intents"]), len(meta["tags"]), 0.0, meta.get("new_tokens", 0)
    )
    heads = torch.load(directory / "heads.pt", map_location="cpu", weights_only=True)
    result = model.load_state_dict(heads, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("encoder.")]
    if missing or result.unexpected_keys:
        raise ModelNotFoundError(
            f"persisted heads do not fit the model: missing={missing} "
            f"unexpected={result.unexpected_keys}",
            hint="retrain the model",
            path=str(directory),
        )
    model.eval()
    return JointClassifier(
        tokenizer,
        model,
        meta["intents"],
        meta["tags"],
        meta["max_length"],
        meta.get("temperature", 1.0),
    )
