"""The rephrasing prompt shared by the NLG and the fine-tuning data."""

from components.nlg.prompt import EMPATHY, SYSTEM_PROMPT, rephrase_messages, reply_token_budget


def test_messages_carry_history_tone_and_template():
    system, user = rephrase_messages(
        "Order SO1 ships.", [("Customer", "hi"), ("Assistant", "Hello")]
    )
    assert system["content"] == SYSTEM_PROMPT
    assert user["content"] == (
        "Conversation so far:\nCustomer: hi\nAssistant: Hello\n\n"
        "Reply to rewrite:\nOrder SO1 ships."
    )
    upset, _ = rephrase_messages("x", tone="empathetic")
    assert upset["content"].endswith(EMPATHY)
    assert rephrase_messages("x")[1]["content"] == "Reply to rewrite:\nx"


def test_long_turns_are_cut():
    _, user = rephrase_messages("t", [("Customer", "a" * 1000)])
    assert "a" * 300 in user["content"] and "a" * 301 not in user["content"]


def test_token_budget_leaves_room_for_an_opening_and_counts_chinese_characters():
    english = "Your 1954.99 CNY refund for order KF897926 arrives within 3 working days."
    assert reply_token_budget(english, 80) == len(english) // 2 + 24
    chinese = "订单KF123456的退款将在3个工作日内到账。"
    assert reply_token_budget(chinese, 200) > reply_token_budget("x" * len(chinese), 200) + 10
    assert reply_token_budget("a" * 500, 80) == 80
