"""components.text: the customer's language and offset-keeping folding."""

import pytest

from components.text import customer_language, fold_for_model


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("退货政策是什么", "zh"),
        ("订单KF100234到哪了", "zh"),  # mixed text with an order number is Chinese
        ("我想问下return policy", "zh"),
        ("hi 你好", "zh"),
        ("訂單到哪了", "zh"),  # traditional characters
        ("where is my order", "en"),
        ("my order KF100234", "en"),
        ("ok", "en"),
        ("KF100234", None),  # an order number alone says nothing
        ("ＫＦ１００２３４", None),
        ("13800138000", None),
        ("li.na@example.com", None),
        ("/affirm", None),  # a button payload
        ("???", None),
        ("", None),
    ],
)
def test_customer_language(text, language):
    assert customer_language(text) == language


def test_fold_for_model_keeps_offsets_and_folds_width_and_traditional():
    text = "訂單ＫＦ７１５３０８什么时候發貨？"
    folded = fold_for_model(text)
    assert folded == "订单KF715308什么时候发货?"
    assert len(folded) == len(text)
    assert fold_for_model("什么") == "什么"  # a simplified character is never changed
    assert fold_for_model("hello 世界") == "hello 世界"
