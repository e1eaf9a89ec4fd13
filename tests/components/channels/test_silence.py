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


def test_the_apology_for_a_stopped_form_says_the_form_was_stopped():
    for handoff in (True, False):
        en = apology("en", handoff=handoff, form_stopped=True)
        zh = apology("zh", handoff=handoff, form_stopped=True)
        assert "stop" in en and "中止" in zh
        assert en != apology("en", handoff=handoff) and zh != apology("zh", handoff=handoff)
        assert ("human" in en) is handoff and ("人工" in zh) is handoff


FORM_DOMAIN = """
version: "3.1"
intents: [order_status, inform_contact]
entities: [order_id]
slots:
  order_id:
    type: text
    mappings: [{type: from_entity, entity: order_id}]
  order_contact:
    type: text
    mappings:
      - type: from_text
        conditions: [{active_loop: order_status_form, requested_slot: order_contact}]
  language:
    type: text
    mappings: [{type: custom}]
forms:
  order_status_form:
    required_slots: [order_id, order_contact]
responses:
  utter_ask_order_contact: [{text: "contact?"}]
"""


def form_turn(failed_turn: list) -> tuple:
    """The tracker of a conversation in the order form, the last turn's events ``failed_turn``."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.from_yaml(FORM_DOMAIN)
    events = [
        ActionExecuted("action_listen"),
        UserUttered("where is KF100234", message_id="m1"),
        ActionExecuted("order_status_form"),
        ActiveLoop("order_status_form"),
        SlotSet("order_id", "KF100234"),
        SlotSet("requested_slot", "order_contact"),
        ActionExecuted("action_listen"),
        UserUttered("13800138000", message_id="m2"),
        *failed_turn,
    ]
    return DialogueStateTracker.from_events("s", events, slots=domain.slots), domain


def test_a_form_whose_validation_failed_is_stopped_and_its_unchecked_answer_dropped():
    from rasa.shared.core.events import ActionExecuted, ActiveLoop, SlotSet

    from components.channels.turns import stale_form_events

    tracker, domain = form_turn(
        [
            ActionExecuted("action_extract_slots"),
            SlotSet("order_contact", "13800138000"),  # extracted, never validated
            SlotSet("language", "en"),
            ActionExecuted("order_status_form"),  # its validation action was unreachable
            ActionExecuted("action_listen"),
        ]
    )
    events = stale_form_events(tracker, "m2", "order_status_form", domain)
    assert events == [
        ActiveLoop(None),
        SlotSet("requested_slot", None),
        SlotSet("order_contact", None),
    ]
    for event in events:
        tracker.update(event)
    assert tracker.active_loop_name is None
    assert tracker.get_slot("order_id") == "KF100234"  # validated in an earlier turn: kept
    assert tracker.get_slot("language") == "en"


def test_no_form_no_form_events():
    from rasa.shared.core.events import ActionExecuted, ActiveLoop, SlotSet

    from components.channels.turns import stale_form_events

    tracker, domain = form_turn(
        [
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            ActionExecuted("action_handoff"),
            ActionExecuted("action_listen"),
        ]
    )
    assert stale_form_events(tracker, "m2", "action_handoff", domain) == []


def test_a_form_that_failed_to_start_drops_what_it_was_given():
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from components.channels.turns import stale_form_events

    domain = Domain.from_yaml(FORM_DOMAIN)
    tracker = DialogueStateTracker.from_events(
        "s",
        [
            ActionExecuted("action_listen"),
            UserUttered("where is KF100234", message_id="m1"),
            ActionExecuted("action_extract_slots"),
            SlotSet("order_id", "KF100234"),
            ActionExecuted("order_status_form"),  # activation: its validation failed
            ActionExecuted("action_listen"),
        ],
        slots=domain.slots,
    )
    events = stale_form_events(tracker, "m1", "order_status_form", domain)
    assert SlotSet("order_id", None) in events
    assert not any(type(event).__name__ == "ActiveLoop" for event in events)


def test_the_guard_stops_the_form_and_says_so(kefu_home):
    import asyncio
    from types import SimpleNamespace

    from rasa.core.channels.channel import UserMessage
    from rasa.core.lock_store import InMemoryLockStore
    from rasa.core.tracker_store import InMemoryTrackerStore
    from rasa.shared.core.events import ActionExecuted, SlotSet

    from components.channels.turns import GUARD_MARK, TurnGuard

    tracker, domain = form_turn(
        [
            ActionExecuted("action_extract_slots"),
            SlotSet("order_contact", "13800138000"),
            ActionExecuted("order_status_form"),
            ActionExecuted("action_listen"),
        ]
    )
    store = InMemoryTrackerStore(domain)
    agent = SimpleNamespace(tracker_store=store, lock_store=InMemoryLockStore(), domain=domain)
    message = UserMessage("13800138000", sender_id="s", message_id="m2", input_channel="rest")

    async def turn() -> tuple:
        await store.save(tracker)
        reply = await TurnGuard("rest").apology(agent, message)
        return reply, await store.retrieve("s")

    reply, stored = asyncio.run(turn())
    assert reply["text"] == apology("en", handoff=True, form_stopped=True)
    assert stored.active_loop_name is None
    assert stored.get_slot("order_contact") is None and stored.get_slot("requested_slot") is None
    last = stored.events[-1]
    assert last.text == reply["text"] and last.metadata == {GUARD_MARK: True}
