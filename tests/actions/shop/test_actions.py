"""The shop's actions: the order-status form's validation and the order lookup."""

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.shop import Shop, set_shop
from actions.shop import actions as shop_actions
from tests.actions.trackers import make_tracker, run


@pytest.fixture(autouse=True)
def fresh_shop(kefu_home):
    previous = set_shop(Shop())
    yield
    set_shop(previous)


@pytest.mark.parametrize(
    ("value", "expected", "response"),
    [
        ("KF100234", "KF100234", None),
        ("kf 100871", "KF100871", None),
        ("my number is #104512", "KF104512", None),
        ("KF999999", None, "utter_order_not_found"),
        ("no idea", None, "utter_invalid_order_id"),
    ],
)
def test_order_id_validation(value, expected, response):
    dispatcher = CollectingDispatcher()
    result = shop_actions.ValidateOrderStatusForm().validate_order_id(
        value, dispatcher, make_tracker(value), {}
    )
    assert result == {"order_id": expected}
    assert [m["response"] for m in dispatcher.messages] == ([response] if response else [])


CLEARED = [
    {"event": "slot", "timestamp": None, "name": "order_id", "value": None},
    {"event": "slot", "timestamp": None, "name": "order_contact", "value": None},
]


def test_lookup_reports_status_from_the_database():
    slots = {"order_id": "KF100555", "order_contact": shop_actions.VERIFIED}
    messages, events = run(shop_actions.ActionLookupOrder(), make_tracker(slots=slots))
    assert messages[0]["response"] == "utter_order_status"
    assert messages[0]["status"] == "out for delivery today"
    assert "JD Logistics" in messages[0]["detail"]
    assert events == CLEARED


def test_lookup_reveals_nothing_without_verification():
    for contact in (None, "15900159000"):  # unverified, or a raw value set by hand
        slots = {"order_id": "KF100555", "order_contact": contact}
        messages, events = run(shop_actions.ActionLookupOrder(), make_tracker(slots=slots))
        assert [m["response"] for m in messages] == ["utter_contact_locked"]
        assert events == CLEARED


def test_contact_validation_accepts_the_orders_phone_and_counts_failures():
    form = shop_actions.ValidateOrderStatusForm()

    def validate(value, attempts=0.0):
        dispatcher = CollectingDispatcher()
        slots = {"order_id": "KF100555", "contact_attempts": attempts}
        result = form.validate_order_contact(value, dispatcher, make_tracker(slots=slots), {})
        return result, [m["response"] for m in dispatcher.messages]

    assert validate("159 0015 9000") == (
        {"order_contact": shop_actions.VERIFIED, "contact_attempts": 0.0},
        [],
    )
    assert validate("13800138000") == (
        {"order_contact": None, "contact_attempts": 1.0},
        ["utter_contact_mismatch"],
    )
    assert validate("13800138000", attempts=2.0) == (
        {"order_contact": None, "order_id": None, "contact_attempts": 3.0},
        ["utter_contact_locked"],
    )
    # locked for the conversation: even the right answer is not checked any more
    assert validate("15900159000", attempts=3.0) == (
        {"order_contact": None, "order_id": None},
        ["utter_contact_locked"],
    )


def test_lookup_in_chinese():
    slots = {"order_id": "KF100555", "order_contact": shop_actions.VERIFIED, "language": "zh"}
    messages, _ = run(shop_actions.ActionLookupOrder(), make_tracker("15900159000", slots=slots))
    assert messages[0]["response"] == "utter_order_status"
    assert messages[0]["items"] == "跑鞋" and messages[0]["status"] == "今天正在派送"
    detail = "承运快递：京东物流，运单号 JDV0081223341，预计 11月28日前送达。"
    assert messages[0]["detail"] == detail
    assert messages[0]["detail"] == detail


def test_the_latest_message_language_wins_over_the_slot():
    slots = {"order_id": "KF100234", "order_contact": shop_actions.VERIFIED, "language": "en"}
    tracker = make_tracker("我的手机号是13800138000", slots=slots, language="zh")
    messages, _ = run(shop_actions.ActionLookupOrder(), tracker)
    assert messages[0]["items"] == "无线耳机"
