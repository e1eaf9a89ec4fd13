"""Which encoder the intent/entity model fine-tunes (components.nlu.encoder_choice)."""

from pathlib import Path

import components.model_prep as prep
from components.nlu.encoder_choice import chinese_share, choose_encoder


def test_chinese_share_counts_messages_with_an_ideograph():
    assert chinese_share(["我的订单", "where is my order", "KF100 到了吗"]) == 2 / 3
    assert chinese_share([]) == 0.0


def test_a_configured_folder_wins_whatever_the_data(monkeypatch):
    monkeypatch.setattr(prep, "e5_path", lambda: Path("/e5"))
    assert choose_encoder("/mine", 0.1, ["我的订单"]) == Path("/mine")


def test_share_one_means_always_minilm(monkeypatch):
    monkeypatch.setattr(prep, "e5_path", lambda: Path("/e5"))
    monkeypatch.setattr(prep, "minilm_path", lambda: Path("/minilm"))
    assert choose_encoder(None, 1.0, ["我的订单"]) == Path("/minilm")
    assert choose_encoder(None, 0.5, ["我的订单"]) == Path("/e5")
