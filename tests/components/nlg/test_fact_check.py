import pytest

from components.nlg.fact_check import check_rephrase, language_of, protected_facts

TEMPLATE = (
    "Order KF100234 (wireless earbuds) is on its way. Carrier: SF Express, tracking number "
    "SF1402938475, expected by 2026-11-30."
)


def test_faithful_rephrasing_passes():
    candidate = (
        "Good news! Your order KF100234 (wireless earbuds) is on its way with SF Express. "
        "Tracking number SF1402938475, expected by 2026-11-30."
    )
    assert check_rephrase(TEMPLATE, candidate) == []


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        ("", "empty"),
        ("On its way!", "too_short"),
        (TEMPLATE.replace("KF100234", "KF100235"), "missing_fact"),
        (TEMPLATE.replace("2026-11-30", "2026-12-30"), "changed_numbers"),
        (TEMPLATE.replace("SF Express", "a courier"), "missing_fact"),
        (TEMPLATE + " Track it at https://evil.example/x", "new_url"),
        (TEMPLATE + " Write to refunds@evil.example.", "new_email"),
        (TEMPLATE + " You also get 20 percent off!", "changed_numbers"),
        (
            "订单 KF100234 已发货，承运商 SF Express，运单号 SF1402938475，预计 2026-11-30 送达。",
            "language",
        ),
        (TEMPLATE * 4, "too_long"),
    ],
)
def test_adversarial_rephrasings_are_rejected(candidate, reason):
    assert reason in check_rephrase(TEMPLATE, candidate)


def test_slot_values_are_protected():
    template = "Thanks Alice, ticket T-1A2B is open."
    assert "T-1A2B" in protected_facts(template, ["T-1A2B"])
    assert "missing_fact" in check_rephrase(template, "Thanks, your ticket is open.", ["T-1A2B"])


def test_language_detection():
    assert language_of("hello there") == "en"
    assert language_of("你好，请问订单到哪了") == "zh"
    assert language_of("我的 order 到哪了") == "zh"
    assert language_of("123 😀") == "und"


@pytest.mark.parametrize(
    ("template", "candidate", "reasons"),
    [
        ("Sorry, order SO1 is delayed.", "Sure! Order SO1 is delayed.", ["lost_apology"]),
        ("Sorry, order SO1 is delayed.", "I'm sorry: order SO1 is late.", []),
        ("Hello! I'm the shop assistant.", "Sure! I'm the shop assistant.", ["lost_greeting"]),
        ("Hello! I'm the shop assistant.", "Hi there, I'm the shop assistant.", []),
        ("很抱歉，订单延误了。", "好的，订单延误了。", ["lost_apology"]),
        ("您好！我是客服助手。", "你好，我是本店的客服助手。", []),
        ("Order SO1 ships today.", "Sure! Order SO1 ships today.", []),  # nothing to keep
        (
            "Order SO1 ships today.",
            "Here's a rewritten reply: Order SO1 ships today.",
            ["prompt_leak"],
        ),
        ("Order SO1 ships today.", "Order SO1 ships today.\nCustomer: thanks", ["prompt_leak"]),
    ],
)
def test_tone_checks_keep_apologies_and_greetings(template, candidate, reasons):
    from components.nlg.fact_check import check_tone

    assert check_tone(template, candidate) == reasons
