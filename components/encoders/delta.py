"""The Chinese encoder as a small delta on top of the pip-installed all-MiniLM-L6-v2.

The delta file (safetensors, committed with its model card and checksum) holds only what the
adaptation trained (:mod:`training.encoders.zh_adaptation`):

* ``new_rows``: embeddings of the Chinese characters appended to the vocabulary (their
  characters, in order, are in the file's metadata ``new_tokens``);
* ``lora.<module>.A`` / ``.B``: a low-rank update of each adapted linear layer, merged as
  ``W + scale * B @ A`` (``scale`` in the metadata).

:func:`assemble` writes a complete sentence-transformers folder (the MiniLM folder with the
longer vocabulary, the resized embeddings and the merged weights) once, after checking the
delta's SHA-256 against the committed checksum, so loading it later costs what loading MiniLM
costs. Engines only: no ``rasa``; torch is imported on use.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from components.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

#: The committed delta, its checksum and its model card.
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DELTA_FILE = ARTIFACTS / "minilm-zh-delta.safetensors"
CHECKSUM_FILE = ARTIFACTS / "minilm-zh-delta.sha256"
#: Written into an assembled folder; its content says which delta built it.
ASSEMBLED_MARK = "kefu-zh-delta.json"


def sha256(path: Path) -> str:
    """The file's SHA-256 (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksum(path: Path, checksum_file: Path) -> str:
    """Write ``path``'s SHA-256 as ``checksum_file`` (``sha256sum`` format); returns it."""
    digest = sha256(path)
    checksum_file.write_text(f"{digest}  {path.name}\n", encoding="utf-8")
    return digest


def expected_checksum(checksum_file: Path = CHECKSUM_FILE) -> str:
    """The committed checksum (first field of the ``.sha256`` file)."""
    if not checksum_file.is_file():
        raise ModelNotFoundError(
            f"{checksum_file.name} is missing",
            hint="restore it from git, or rebuild the delta (see its model card)",
            path=str(checksum_file),
        )
    return checksum_file.read_text(encoding="utf-8").split()[0]


def verify(delta: Path = DELTA_FILE, checksum_file: Path = CHECKSUM_FILE) -> str:
    """Check the delta against its checksum; returns the checksum.

    Raises:
        ModelNotFoundError: when the delta is missing or its checksum differs.
    """
    if not delta.is_file():
        raise ModelNotFoundError(
            f"the Chinese encoder delta {delta.name} is missing",
            hint="restore it from git or rebuild it: python -m training zh-encoder",
            path=str(delta),
        )
    actual, wanted = sha256(delta), expected_checksum(checksum_file)
    if actual != wanted:
        raise ModelNotFoundError(
            f"{delta.name} does not match its checksum ({actual[:12]} != {wanted[:12]})",
            hint="restore the committed file, or commit the checksum of a rebuilt one",
            path=str(delta),
        )
    return actual


def read_delta(delta: Path) -> tuple[dict, dict]:
    """``(tensors, metadata)`` of a delta file (metadata values JSON-decoded)."""
    from safetensors import safe_open

    tensors = {}
    with safe_open(str(delta), framework="pt") as handle:
        raw = handle.metadata() or {}
        for key in handle.keys():
            tensors[key] = handle.get_tensor(key)
    metadata = {k: json.loads(v) for k, v in raw.items()}
    return tensors, metadata


def extend_tokenizer(base: Path, new_tokens: list[str], target: Path) -> None:
    """Write ``vocab.txt`` and ``tokenizer.json`` of ``base`` with ``new_tokens`` appended.

    The new tokens get the next ids, in order, in the WordPiece vocabulary itself (not as
    "added tokens"), so BERT's pre-tokenizer splits Chinese into characters as before and each
    character now has its own id.
    """
    vocab = (base / "vocab.txt").read_text(encoding="utf-8").splitlines()
    known = set(vocab)
    fresh = [t for t in new_tokens if t not in known]
    target.mkdir(parents=True, exist_ok=True)
    (target / "vocab.txt").write_text("\n".join(vocab + fresh) + "\n", encoding="utf-8")
    spec = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))
    table = spec["model"]["vocab"]
    for token in fresh:
        table.setdefault(token, len(table))
    (target / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), "utf-8")


def apply_delta(model, tensors: dict, metadata: dict) -> None:  # noqa: ANN001 - a BertModel
    """Resize ``model``'s embeddings, set the new rows and merge the low-rank updates."""
    import torch

    new_rows = tensors["new_rows"].float()
    old = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(old + new_rows.shape[0])
    with torch.no_grad():
        model.get_input_embeddings().weight[old:] = new_rows
        scale = float(metadata.get("lora_scale", 1.0))
        modules = dict(model.named_modules())
        for key in tensors:
            if not key.startswith("lora.") or not key.endswith(".A"):
                continue
            name = key[len("lora.") : -len(".A")]
            a, b = tensors[key].float(), tensors[f"lora.{name}.B"].float()
            modules[name].weight += scale * (b @ a)


def assemble(
    target: Path,
    base: Path,
    delta: Path = DELTA_FILE,
    checksum_file: Path | None = CHECKSUM_FILE,
) -> Path:
    """Write the Chinese encoder (a sentence-transformers folder) to ``target``, once.

    Idempotent: a folder already assembled from the same delta is left alone.

    Args:
        target: The folder to write.
        base: The base all-MiniLM-L6-v2 folder (:func:`components.model_prep.minilm_path`).
        delta: The committed delta file.
        checksum_file: Its SHA-256 file (None: not checked, for a delta just trained).

    Raises:
        ModelNotFoundError: when the delta, its checksum or the base model is missing or wrong.
    """
    digest = verify(delta, checksum_file) if checksum_file is not None else sha256(delta)
    mark = target / ASSEMBLED_MARK
    if mark.is_file() and json.loads(mark.read_text()).get("sha256") == digest:
        return target
    from transformers import AutoModel

    tensors, metadata = read_delta(delta)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(base, tmp, ignore=shutil.ignore_patterns("model.safetensors", "*.bin"))
    extend_tokenizer(base, list(metadata["new_tokens"]), tmp)
    model = AutoModel.from_pretrained(str(base))
    apply_delta(model, tensors, metadata)
    model.save_pretrained(str(tmp), safe_serialization=True)
    (tmp / ASSEMBLED_MARK).write_text(
        json.dumps({"sha256": digest, "new_tokens": len(metadata["new_tokens"])}), "utf-8"
    )
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    logger.info("encoders.assembled path=%s new_tokens=%d", target, len(metadata["new_tokens"]))
    return target
