"""Order verification cannot be brute-forced by rotating sender ids (issue: hardening, point 2).

The per-conversation lock (``contact_attempts``) stops one conversation after three wrong
contacts; these tests show the lock per order (and per sender) across conversations holds when
an attacker opens a new conversation for every guess, and ends after its time window.
"""

from __future__ import annotations

import logging

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.shop import Shop, set_shop
from actions.shop import actions as shop_actions
from tests.actions.trackers import make_tracker

ORDER, PHONE = "KF100555", "15900159000"  # the seeded order and its phone


class Clock:
    """A settable clock for the attempts store."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def fresh_shop(kefu_home, clock):
    try:
        from actions.shop.attempts import VerificationAttempts
    except ImportError:  # before the fix: no store, the order is only locked per conversation
        previous = set_shop(Shop())
    else:
        previous = set_shop(Shop(attempts=VerificationAttempts(clock=clock)))
    yield
    set_shop(previous)


def guess(answer: str, sender: str, order_id: str = ORDER, attempts: float = 0.0):
    """One guess in a fresh conversation of ``sender``: ``(slots set, responses)``."""
    dispatcher = CollectingDispatcher()
    slots = {"order_id": order_id, "contact_attempts": attempts}
    tracker = make_tracker(answer, slots=slots, sender_id=sender)
    result = shop_actions.ValidateOrderStatusForm().validate_order_contact(
        answer, dispatcher, tracker, {}
    )
    return result, [m["response"] for m in dispatcher.messages]


def wrong_phone(n: int) -> str:
    return f"1590015{n:04d}" if f"1590015{n:04d}" != PHONE else "15900150001"


def test_rotating_sender_ids_does_not_lift_the_order_lock(caplog):
    caplog.set_level(logging.INFO)
    replies = [guess(wrong_phone(n), f"attacker-{n}")[1] for n in range(40)]
    # not even the right phone verifies the order while it is locked
    assert guess(PHONE, "attacker-right") == (
        {"order_contact": None, "order_id": None},
        ["utter_contact_locked"],
    )
    from actions.shop import attempts

    allowed = attempts.MAX_ORDER_FAILURES
    assert replies[: allowed - 1] == [["utter_contact_mismatch"]] * (allowed - 1)
    # the guess that reaches the limit is refused, and every later one, whoever sends it
    assert replies[allowed - 1 :] == [["utter_contact_locked"]] * (40 - allowed + 1)
    audit = [r.getMessage() for r in caplog.records if "orders.verify_locked" in r.getMessage()]
    assert audit[0].startswith(
        f"orders.verify_locked scope=order order={ORDER} failures={allowed} "
        f"window_s={attempts.FAILURE_WINDOW_S} lock_s={attempts.LOCK_S} sender=sender_"
    )
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "attacker-" not in logged and PHONE not in logged and "15900150" not in logged


def test_the_lock_is_per_order_and_shared_by_replicas(clock):
    from actions.shop.attempts import MAX_ORDER_FAILURES, VerificationAttempts

    for n in range(MAX_ORDER_FAILURES):
        guess(wrong_phone(n), f"attacker-{n}")
    # another order is not affected
    assert guess("13800138000", "customer", order_id="KF100234")[0]["order_contact"] == (
        shop_actions.VERIFIED
    )
    # another action server replica (a new store on the same file) sees the lock
    set_shop(Shop(attempts=VerificationAttempts(clock=clock)))
    assert guess(PHONE, "customer")[1] == ["utter_contact_locked"]


def test_the_right_contact_after_the_lock_verifies(clock):
    from actions.shop.attempts import LOCK_S, MAX_ORDER_FAILURES

    for n in range(MAX_ORDER_FAILURES):
        guess(wrong_phone(n), f"attacker-{n}")
    clock.now += LOCK_S - 1
    assert guess(PHONE, "customer")[1] == ["utter_contact_locked"]
    clock.now += 2
    assert guess(PHONE, "customer") == (
        {"order_contact": shop_actions.VERIFIED, "contact_attempts": 0.0},
        [],
    )
    # the success starts the count again: one wrong answer does not lock the order
    assert guess(wrong_phone(1), "other")[1] == ["utter_contact_mismatch"]


def test_failures_outside_the_window_do_not_count(clock):
    from actions.shop.attempts import FAILURE_WINDOW_S, MAX_ORDER_FAILURES

    for n in range(MAX_ORDER_FAILURES - 1):
        guess(wrong_phone(n), f"slow-{n}")
    clock.now += FAILURE_WINDOW_S + 1
    assert guess(wrong_phone(9), "slow-9")[1] == ["utter_contact_mismatch"]
    assert guess(PHONE, "customer")[0]["order_contact"] == shop_actions.VERIFIED


def test_one_sender_guessing_across_orders_is_locked():
    from actions.shop.attempts import MAX_SENDER_FAILURES

    orders = ["KF100234", "KF100871", "KF104512", "KF100555", "KF100321", "KF103300"]
    replies = []
    for n in range(MAX_SENDER_FAILURES):  # new sessions: the conversation's slot starts at 0
        replies.append(guess("13511112222", "prober", order_id=orders[n % len(orders)])[1])
    assert replies[-1] == ["utter_contact_locked"]
    assert ["utter_contact_locked"] not in replies[:-1]
    # the sender is locked for every order; other customers are not
    assert guess("13600136000", "prober", order_id="KF103300")[1] == ["utter_contact_locked"]
    assert guess("18600186000", "someone", order_id="KF100042")[0]["order_contact"] == (
        shop_actions.VERIFIED
    )


def test_the_store_keeps_no_raw_contact_nor_sender_id(kefu_home):
    for n in range(7):
        guess(wrong_phone(n), f"13912345{n:03d}")  # sender ids that are phone numbers
    raw = b"".join(p.read_bytes() for p in kefu_home.glob("*.db*") if p.name != "orders.db")
    assert raw  # the attempts are stored in KEFU_HOME
    assert b"1591234" not in raw and b"15900150" not in raw and b"13912345" not in raw


def test_the_conversation_lock_still_holds_after_three_wrong_contacts():
    assert guess(wrong_phone(1), "alice") == (
        {"order_contact": None, "contact_attempts": 1.0},
        ["utter_contact_mismatch"],
    )
    assert guess(wrong_phone(2), "alice", attempts=2.0) == (
        {"order_contact": None, "order_id": None, "contact_attempts": 3.0},
        ["utter_contact_locked"],
    )
    assert guess(PHONE, "alice", attempts=3.0) == (
        {"order_contact": None, "order_id": None},
        ["utter_contact_locked"],
    )


def test_an_unavailable_attempts_store_fails_closed(tmp_path):
    from actions.shop.attempts import VerificationAttempts

    set_shop(Shop(attempts=VerificationAttempts(tmp_path / "no" / "such" / "a.db")))
    result, replies = guess(PHONE, "customer")
    assert result == {"order_contact": None} and replies == [None]
