import pytest

from components.errors import ModelNotFoundError
from components.model_prep import minilm_path, smollm2_gguf_path, smollm2_path


def test_bundled_models_are_found():
    assert (minilm_path() / "config.json").is_file()
    assert smollm2_gguf_path().suffix == ".gguf"


def test_missing_conversion_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_MODEL_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="model_prep"):
        smollm2_path(prepare=False)


@pytest.mark.slow
def test_converted_tokenizer_round_trips_text():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(smollm2_path()))
    text = "Order KF100234 costs 399 CNY, 你好!"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    assert "Ġ" not in tokenizer.decode(tokenizer(" hello world")["input_ids"])
    assert tokenizer.eos_token == "<|im_end|>"
