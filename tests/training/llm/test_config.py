"""FinetuneConfig: defaults, YAML overrides, bad values named."""

import pytest

from components.errors import ConfigError
from training.llm.config import FinetuneConfig


def test_yaml_overrides_defaults_and_cli_overrides_yaml(tmp_path):
    path = tmp_path / "ft.yml"
    path.write_text("lora_r: 4\nlearning_rate: 0.001\nseed: 3\n", encoding="utf-8")
    config = FinetuneConfig.from_file(path, seed=9, max_minutes=None)
    assert (config.lora_r, config.learning_rate, config.seed) == (4, 0.001, 9)
    assert config.max_minutes == FinetuneConfig().max_minutes
    assert config.to_dict()["target_modules"][0] == "q_proj"


@pytest.mark.parametrize(
    ("text", "key"),
    [("lora_r: 0\n", "lora_r"), ("eval_share: 1.5\n", "eval_share"), ("lr: 1\n", "lr"),
     ("max_minutes: -1\n", "max_minutes")],
)  # fmt: skip
def test_bad_values_are_named(tmp_path, text, key):
    path = tmp_path / "ft.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=key):
        FinetuneConfig.from_file(path)


def test_a_yaml_list_is_not_a_config(tmp_path):
    path = tmp_path / "ft.yml"
    path.write_text("- 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        FinetuneConfig.from_file(path)
