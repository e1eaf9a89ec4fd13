"""The LanguageDetector component, on real Rasa messages."""

import pytest
from rasa.shared.nlu.training_data.message import Message

from components.errors import ConfigError
from components.nlu.language_detector import LanguageDetector


def _parse(text: str, **config) -> dict:
    detector = LanguageDetector({**LanguageDetector.get_default_config(), **config})
    message = Message.build(text=text)
    detector.process([message])
    return message.as_dict(only_output_properties=True)


def test_language_is_in_the_parse_data():
    assert _parse("我的订单KF100871到哪了")["language"] == "zh"
    assert _parse("where is my order?")["language"] == "en"
    assert _parse("KF100871").get("language") is None  # keeps the conversation's language
    assert "entities" not in _parse("你好") or not _parse("你好")["entities"]


def test_a_language_outside_the_configured_ones_is_not_reported():
    assert _parse("你好", languages=["en"]).get("language") is None


@pytest.mark.parametrize("languages", [[], ["fr"], "zh", None])
def test_bad_languages_are_refused(languages):
    with pytest.raises(ConfigError, match="languages"):
        LanguageDetector({"languages": languages})
