"""The error catalogue: every code has a customer message in both languages."""

import pytest

from components import errors


def test_every_code_has_an_english_and_a_chinese_message():
    assert set(errors.USER_MESSAGES) == set(errors.USER_MESSAGES_ZH)
    exc = errors.KnowledgeBaseError("down")
    assert exc.user_message == exc.user_message_in("en") == errors.USER_MESSAGES["KEFU-KB"]
    assert exc.user_message_in("zh") == errors.USER_MESSAGES_ZH["KEFU-KB"]
    assert errors.KefuError("x").user_message_in("zh") == "出了点问题，请再试一次。"


def test_check_number_accepts_the_range_and_names_a_bad_value():
    from components.errors import ConfigError, check_number

    assert check_number("t", 2.5, 0, 50) == 2.5
    for bad in (-1, 51, "5", True, float("nan")):
        with pytest.raises(ConfigError, match="'t'") as error:
            check_number("t", bad, 0, 50, component="x")
        assert "a number from 0 to 50" in str(error.value)
        assert error.value.fields["component"] == "x"
    with pytest.raises(ConfigError, match="seconds"):
        check_number("t", -1, 0, expected="a number of seconds >= 0")


def test_check_int_refuses_bools_floats_and_small_values():
    from components.errors import ConfigError, check_int

    assert check_int("n", 3, 1) == 3
    for bad in (0, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="an integer >= 1"):
            check_int("n", bad, 1)
