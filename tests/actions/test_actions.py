"""The shared actions' run() methods (language, knowledge, handoff) with rasa-sdk's objects."""

import pytest

from actions import actions as kefu_actions
from actions.tickets import TicketStore, set_tickets
from components.assistants import get_assistant
from components.services import Services, set_services
from components.settings import KnowledgeSettings
from knowledge.index import build_index
from knowledge.retrieval import KnowledgeBase
from knowledge.stores import MemoryStore
from tests.actions.trackers import make_tracker, run


@pytest.fixture(autouse=True)
def fresh_stores(kefu_home):
    previous = set_tickets(None)
    yield
    set_tickets(previous)


@pytest.fixture
def use_services():
    """Install a services object built from the given parts for one test."""
    installed = []

    def install(**parts):
        installed.append(set_services(Services(**parts)))

    yield install
    for previous in reversed(installed):
        set_services(previous)


def _missing_index(tmp_path):
    """A knowledge base whose index was never built (the outage every action must survive)."""
    return KnowledgeBase(KnowledgeSettings(), MemoryStore(tmp_path / "missing.json"))


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory):
    path = tmp_path_factory.mktemp("kb") / "index.json"
    store = MemoryStore(path)
    build_index(get_assistant("shop").docs, KnowledgeSettings(), store)
    return KnowledgeBase(KnowledgeSettings(), store)


@pytest.mark.slow
def test_knowledge_answer_cites_its_source(use_services, knowledge):
    use_services(knowledge=knowledge)
    messages, events = run(
        kefu_actions.ActionAnswerKnowledge(),
        make_tracker("how long do refunds take?", "ask_policy"),
    )
    assert "working day" in messages[0]["text"]
    assert "Source: Refunds policy" in messages[0]["text"] and "(refunds.md)" in messages[0]["text"]
    slots = {e["name"]: e["value"] for e in events}
    assert slots["kb_found"] is True and slots["kb_sources"][0] == "refunds.md"


@pytest.mark.slow
def test_follow_up_questions_use_the_previous_question(use_services, knowledge):
    use_services(knowledge=knowledge)
    first = {"text": "how long is the warranty on electronics?", "intent": {"name": "ask_policy"}}
    follow = {"text": "and for watches?", "intent": {"name": "ask_policy"}}
    events = [
        {"event": "user", "text": first["text"], "parse_data": first},
        {"event": "user", "text": follow["text"], "parse_data": follow},
    ]
    tracker = make_tracker(follow["text"], "ask_policy", events=events)
    assert kefu_actions._previous_policy_question(tracker) == first["text"]
    messages, _ = run(kefu_actions.ActionAnswerKnowledge(), tracker)
    assert "24-month warranty on the movement" in messages[0]["text"]
    assert "(warranty.md)" in messages[0]["text"]


@pytest.mark.slow
def test_knowledge_refuses_and_offers_a_human(use_services, knowledge):
    use_services(knowledge=knowledge)
    messages, events = run(
        kefu_actions.ActionAnswerKnowledge(), make_tracker("who won the world cup", "ask_policy")
    )
    assert messages[0]["response"] == "utter_kb_not_found"
    assert events[-1] == {"event": "followup", "timestamp": None, "name": "utter_offer_human"}
    assert {e["name"]: e["value"] for e in events if e["event"] == "slot"}["kb_found"] is False


@pytest.mark.slow
@pytest.mark.parametrize("intent", ["nlu_fallback", "faq"])  # fallback, retrieval intent
def test_knowledge_answers_for_the_fallback_and_retrieval_intents(use_services, knowledge, intent):
    use_services(knowledge=knowledge)
    messages, events = run(
        kefu_actions.ActionAnswerKnowledge(), make_tracker("how long do refunds take?", intent)
    )
    assert "(refunds.md)" in messages[0]["text"]
    assert {e["name"]: e["value"] for e in events if e["event"] == "slot"}["kb_found"] is True


@pytest.mark.slow
def test_knowledge_as_fallback_apologises_and_offers_a_human(use_services, knowledge):
    use_services(knowledge=knowledge)
    messages, events = run(
        kefu_actions.ActionAnswerKnowledge(), make_tracker("blorp zxqv wuzzle", "nlu_fallback")
    )
    assert messages[0]["response"] == "utter_default"
    assert events[-1] == {"event": "followup", "timestamp": None, "name": "utter_offer_human"}


def test_previous_question_is_one_the_knowledge_action_answered():
    def user(text, intent):
        return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}

    def answered(found):
        return [
            {"event": "action", "name": "action_answer_knowledge"},
            {"event": "slot", "name": "kb_found", "value": found},
        ]

    events = [
        user("how long is the warranty?", "nlu_fallback"),
        *answered(True),
        user("asdf qwer zzz", "nlu_fallback"),  # not found: not a question to follow up on
        *answered(False),
        user("track my order", "order_status"),
        {"event": "action", "name": "order_status_form"},
        user("and for watches?", "ask_policy"),
    ]
    tracker = make_tracker("and for watches?", "ask_policy", events=events)
    assert kefu_actions._previous_policy_question(tracker) == "how long is the warranty?"
    assert kefu_actions._previous_policy_question(make_tracker("hi", events=events[3:])) is None


@pytest.mark.slow
def test_an_unsure_message_is_not_joined_to_the_previous_question(use_services, knowledge):
    use_services(knowledge=knowledge)
    first = {"text": "how long is the warranty on a watch?", "intent": {"name": "ask_policy"}}
    events = [{"event": "user", "text": first["text"], "parse_data": first}]
    tracker = make_tracker("but I don't understand", "nlu_fallback", events=events)
    messages, _ = run(kefu_actions.ActionAnswerKnowledge(), tracker)
    assert messages[0]["response"] == "utter_default"  # not the watch warranty again


def test_knowledge_outage_as_fallback_is_the_usual_apology(use_services, tmp_path):
    use_services(
        knowledge=KnowledgeBase(KnowledgeSettings(), MemoryStore(tmp_path / "missing.json"))
    )
    messages, events = run(
        kefu_actions.ActionAnswerKnowledge(), make_tracker("blorp zxqv", "nlu_fallback")
    )
    assert messages[0]["response"] == "utter_default"
    assert events[-1] == {"event": "followup", "timestamp": None, "name": "utter_offer_human"}


@pytest.mark.slow
def test_knowledge_refuses_when_the_grounded_llm_declines(use_services, knowledge):
    from components.llm import LLMClient
    from knowledge.answering import AnswerComposer
    from tests.scripted_llm import ScriptedBackend

    composer = AnswerComposer(llm={"backend": "transformers"})
    composer._client = LLMClient(ScriptedBackend("I don't know."), timeout_s=2.0)
    use_services(knowledge=knowledge, composer=composer)
    tracker = make_tracker("how long do refunds take?", "ask_policy")
    assert knowledge.answer("how long do refunds take?").found  # retrieval alone would answer
    messages, events = run(kefu_actions.ActionAnswerKnowledge(), tracker)
    assert messages[0]["response"] == "utter_kb_not_found"
    assert events[-1] == {"event": "followup", "timestamp": None, "name": "utter_offer_human"}
    assert {e["name"]: e["value"] for e in events if e["event"] == "slot"}["kb_found"] is False


def test_knowledge_unavailable_uses_the_error_catalogue(use_services, tmp_path):
    use_services(
        knowledge=KnowledgeBase(KnowledgeSettings(), MemoryStore(tmp_path / "missing.json"))
    )
    messages, _ = run(kefu_actions.ActionAnswerKnowledge(), make_tracker("refunds?", "ask_policy"))
    assert messages[0]["text"].startswith("I can't reach the knowledge base")


def test_unexpected_retrieval_errors_are_caught(use_services):
    class Corrupt:
        def answer(self, question, language=None, context=None):
            raise ValueError("index is not JSON")

    use_services(knowledge=Corrupt())
    messages, events = run(kefu_actions.ActionAnswerKnowledge(), make_tracker("refunds?"))
    assert messages[0]["text"].startswith("I can't reach the knowledge base")
    assert {e["name"]: e["value"] for e in events}["kb_found"] is False


def test_knowledge_output_is_guarded():
    assert kefu_actions.guarded("this shit is fine") == "this *** is fine"


def test_handoff_writes_a_ticket():
    messages, events = run(
        kefu_actions.ActionHandoff(),
        make_tracker("human please", "request_human", slots={"order_id": "KF100234"}),
    )
    ticket_id = events[0]["value"]
    assert messages == [{**messages[0], "response": "utter_handoff", "ticket_id": ticket_id}]
    tickets = TicketStore().for_sender("test-user")
    assert [t.ticket_id for t in tickets] == [ticket_id]
    assert tickets[0].reason == "request" and tickets[0].last_intent == "request_human"


def test_handoff_failure_is_told_not_hidden(tmp_path):
    set_tickets(TicketStore(tmp_path / "no" / "such" / "t.db"))
    messages, events = run(kefu_actions.ActionHandoff(), make_tracker("human", "request_human"))
    assert events == []
    assert messages[0]["text"].startswith("I couldn't create a ticket")


@pytest.mark.parametrize(
    ("message_language", "slot", "events"),
    [
        ("zh", None, [{"event": "slot", "timestamp": None, "name": "language", "value": "zh"}]),
        ("en", "zh", [{"event": "slot", "timestamp": None, "name": "language", "value": "en"}]),
        ("zh", "zh", []),  # unchanged
        (None, "zh", []),  # an order number or a button says nothing: the slot stays
    ],
)
def test_set_language_follows_the_customer(message_language, slot, events):
    tracker = make_tracker("x", slots={"language": slot}, language=message_language)
    assert run(kefu_actions.ActionSetLanguage(), tracker) == ([], events)


@pytest.mark.slow
def test_knowledge_answer_in_chinese_cites_the_chinese_policy(use_services, knowledge):
    use_services(knowledge=knowledge)
    tracker = make_tracker("退款一般多久能到账", "ask_policy", language="zh")
    messages, events = run(kefu_actions.ActionAnswerKnowledge(), tracker)
    assert "来源：退款政策" in messages[0]["text"] and "(refunds.zh.md)" in messages[0]["text"]
    assert {e["name"]: e["value"] for e in events}["kb_sources"] == ["refunds.zh.md"]


def test_error_messages_follow_the_customers_language(use_services, tmp_path):
    use_services(
        knowledge=KnowledgeBase(KnowledgeSettings(), MemoryStore(tmp_path / "missing.json"))
    )
    tracker = make_tracker("退款多久到账", "ask_policy", language="zh")
    messages, _ = run(kefu_actions.ActionAnswerKnowledge(), tracker)
    assert messages[0]["text"] == "暂时无法访问知识库。需要为您转接人工客服吗？"
    set_tickets(TicketStore(tmp_path / "no" / "such" / "t.db"))
    tracker = make_tracker("转人工", "request_human", slots={"language": "zh"})
    messages, _ = run(kefu_actions.ActionHandoff(), tracker)
    assert messages[0]["text"] == "暂时无法创建工单，请过一分钟再试。"
