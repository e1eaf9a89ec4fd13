"""The LoRA adapter Kefu ships for the bundled SmolLM2, and how a backend applies it.

The adapter is a small trained delta (``components/llm/artifacts/smollm2-kefu-lora/``: the
PEFT ``adapter_config.json`` and ``adapter_model.safetensors``, a ``.sha256`` beside it and a
model card). :func:`resolve_adapter` decides which adapter a backend uses;
:func:`apply_adapter` merges it into the loaded model so every decoder, the lean int8 one
included, runs the merged weights unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from components.errors import ConfigError, ModelNotFoundError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ADAPTER_DIR = ARTIFACTS / "smollm2-kefu-lora"
ADAPTER_FILE = "adapter_model.safetensors"
CHECKSUM_FILE = ARTIFACTS / "smollm2-kefu-lora.sha256"
#: ``adapter`` values: the shipped one when the base is the bundled model, none, or a folder
AUTO, NONE = "auto", "none"


def shipped_adapter() -> Path | None:
    """The committed adapter folder, checked against its checksum; None when absent.

    Raises:
        ModelNotFoundError: The adapter is there but does not match its checksum.
    """
    if not (ADAPTER_DIR / ADAPTER_FILE).is_file():
        return None
    from components.checksums import verify

    verify(ADAPTER_DIR / ADAPTER_FILE, CHECKSUM_FILE)
    return ADAPTER_DIR


def resolve_adapter(adapter: str | None, model_path: str | None) -> Path | None:
    """Which adapter folder to merge for a backend's ``adapter`` and ``model_path`` settings.

    Args:
        adapter: ``auto`` (default: the shipped adapter, only on the bundled base model),
            ``none``, or a folder with a PEFT adapter.
        model_path: The backend's model folder (None = the bundled SmolLM2).

    Raises:
        ConfigError: ``adapter`` names a folder without ``adapter_config.json``.
    """
    if adapter in (None, AUTO):
        # the shipped adapter was trained on the bundled model: never put it on another one
        return shipped_adapter() if model_path is None else None
    if adapter == NONE:
        return None
    path = Path(adapter)
    if not (path / "adapter_config.json").is_file():
        raise ConfigError(
            "adapter",
            adapter,
            "'auto', 'none' or a folder with adapter_config.json",
            component="llm",
        )
    return path


def apply_adapter(model: PreTrainedModel, adapter: Path) -> PreTrainedModel:
    """``model`` with the LoRA adapter at ``adapter`` merged in (a plain model again).

    Raises:
        ModelNotFoundError: The adapter does not fit the model (another base).
    """
    from peft import PeftModel

    try:
        merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ModelNotFoundError(
            f"the LoRA adapter at {adapter} does not fit this model ({type(exc).__name__})",
            hint="set llm.adapter to 'none' or to an adapter trained on this model_path",
            path=str(adapter),
        ) from exc
    logger.info("llm.adapter_merged adapter=%s", adapter.name)
    return merged
