"""Which adapter a backend merges, and what happens when it is missing or altered."""

import shutil

import pytest

from components.errors import ConfigError, ModelNotFoundError
from components.llm import adapter as adapters


def test_auto_uses_the_shipped_adapter_only_on_the_bundled_model():
    assert adapters.resolve_adapter("auto", None) == adapters.shipped_adapter()
    assert adapters.resolve_adapter("auto", "/some/other/model") is None
    assert adapters.resolve_adapter("none", None) is None


def test_a_folder_without_an_adapter_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="adapter"):
        adapters.resolve_adapter(str(tmp_path), None)


def test_an_altered_or_missing_adapter_is_reported(tmp_path, monkeypatch):
    folder = tmp_path / "lora"
    folder.mkdir()
    (folder / adapters.ADAPTER_FILE).write_bytes(b"not the trained weights")
    checksum = tmp_path / "lora.sha256"
    checksum.write_text("0" * 64 + "  adapter_model.safetensors\n", encoding="utf-8")
    monkeypatch.setattr(adapters, "ADAPTER_DIR", folder)
    monkeypatch.setattr(adapters, "CHECKSUM_FILE", checksum)
    with pytest.raises(ModelNotFoundError, match="checksum"):
        adapters.shipped_adapter()
    shutil.rmtree(folder)
    assert adapters.shipped_adapter() is None  # none shipped: the base model is used
