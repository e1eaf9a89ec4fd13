"""The silence guard's decisions: apology language and text, failed custom actions."""

import pytest

from components.channels.silence import (
    Step,
    apology,
    failed_custom_action,
    is_quiet_turn,
    reply_language,
)

BUILTIN = ["action_listen", "action_restart", "action_session_start", "action_default_fallback",
           "action_back", "action_extract_slots", "action_two_stage_fallback"]  # fmt: skip


def act(name):
    return Step("action", name)


BOT = Step("bot")


@pytest.mark.parametrize(
    ("message", "language"),
    [
        ("human please", "en"),
        ("我要转人工", "zh"),
        ("KF100234 的物流到哪了", "zh"),
        ("", "en"),
        ("😀🙏", "en"),
        ("12345", "en"),
    ],
)
def test_reply_language(message, language):
    assert reply_language(message) == language


def test_apologies_only_promise_a_human_after_a_handoff():
    assert apology("en", handoff=True) == (
        "Sorry, something went wrong on our side and I couldn't finish that. "
        "A human colleague will follow up."
    )
    zh = "抱歉，我们这边出了点问题，暂时无法完成。人工客服会尽快联系您。"
    assert apology("zh", handoff=True) == zh
    assert "human" not in apology("en", handoff=False)
    assert "人工" not in apology("zh", handoff=False)
    assert apology("und", handoff=False) == apology("en", handoff=False)


@pytest.mark.parametrize(
    ("turn", "failed"),
    [
        ([act("action_handoff"), act("action_listen")], "action_handoff"),
        ([act("action_handoff")], "action_handoff"),
        ([act("utter_ok"), BOT, act("action_lookup_order"), act("action_listen")],
         "action_lookup_order"),
        ([act("order_status_form"), act("action_listen")], "order_status_form"),
        ([act("action_handoff"), BOT, act("action_listen")], None),
        ([act("action_lookup_order"), act("utter_default"), act("action_listen")], None),
        ([act("action_lookup_order"), act("action_default_fallback"), act("action_listen")], None),
        ([act("action_listen")], None),
        ([], None),
        ([act("utter_greet"), act("action_listen")], None),
    ],
)  # fmt: skip
def test_failed_custom_action(turn, failed):
    assert failed_custom_action(turn, BUILTIN) == failed


@pytest.mark.parametrize(
    ("turn", "quiet"),
    [
        ([act("action_restart"), Step("restart"), act("action_listen")], True),
        ([Step("restart")], True),
        ([act("action_back"), act("action_listen")], True),
        ([act("action_handoff"), act("action_listen")], False),
        ([act("action_listen")], False),
        ([], False),
    ],
)
def test_quiet_turns(turn, quiet):
    assert is_quiet_turn(turn) is quiet


def test_a_message_without_words_keeps_the_conversations_language():
    from components.channels.silence import reply_language

    assert reply_language("退款多久到账") == "zh"
    assert reply_language("KF100234", "zh") == "zh"
    assert reply_language("/affirm", "zh") == "zh"
    assert reply_language("where is my order", "zh") == "en"
    assert reply_language("KF100234") == "en"
