"""The error catalogue: every code has a customer message in both languages."""

from components import errors


def test_every_code_has_an_english_and_a_chinese_message():
    assert set(errors.USER_MESSAGES) == set(errors.USER_MESSAGES_ZH)
    exc = errors.KnowledgeBaseError("down")
    assert exc.user_message == exc.user_message_in("en") == errors.USER_MESSAGES["KEFU-KB"]
    assert exc.user_message_in("zh") == errors.USER_MESSAGES_ZH["KEFU-KB"]
    assert errors.KefuError("x").user_message_in("zh") == "出了点问题，请再试一次。"
