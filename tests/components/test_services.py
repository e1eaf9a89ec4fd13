"""The process's services object: one guard configuration for every path, shared LLM clients."""

from __future__ import annotations

import asyncio

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.training_data.message import Message
from rasa.utils.endpoints import EndpointConfig
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from components.errors import ConfigError
from components.llm import LLMClient
from components.nlg.rephrasing import RephrasingNLG
from components.nlu.guard_component import GUARD, SensitiveContentGuard
from components.services import Services, get_services, set_services
from components.settings import GuardSettings, Settings
from tests.scripted_llm import ScriptedBackend

# a shop-specific term no shipped lexicon has, and that the demo shop's refund policy contains
LEXICON = "original payment method\tshop_custom\t2\tmask\n"
DOMAIN = Domain.from_yaml(
    """
version: "3.1"
responses:
  utter_refund:
    - text: "Your refund is on its way."
      metadata: {rephrase: true}
"""
)


def test_services_are_built_once_and_lazily():
    services = Services()
    assert services._built == {}  # nothing built yet
    assert services.guard is services.guard
    assert services.pii is services.pii
    assert get_services() is get_services()


def test_callers_of_one_backend_share_one_client():
    services = Services()
    config = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}
    nlg_client = services.llm({**config, "timeout": 2.0})
    classifier_client = services.llm({**config, "timeout": 5.0})
    assert nlg_client is classifier_client  # the timeout is given per call
    assert services.llm({**config, "model": "other"}) is not nlg_client


def test_no_lexicon_at_all_is_a_config_error(tmp_path):
    services = Services(Settings(guard=GuardSettings(shipped_lexicons=False)))
    with pytest.raises(ConfigError, match="kefu.guard.lexicons"):
        _ = services.guard


def test_the_custom_term_is_caught_in_user_input(guard_settings, tmp_path):
    guard_settings(LEXICON)
    (tmp_path / "storage").mkdir()
    component = SensitiveContentGuard.create(
        SensitiveContentGuard.get_default_config(),
        LocalModelStorage(tmp_path / "storage"),
        Resource("guard"),
        ExecutionContext(GraphSchema({}), "test"),
    )
    message = Message.build("refund it to the original payment method please")
    component.process([message])
    assert message.get(GUARD)["categories"] == ["shop_custom"]


def test_the_custom_term_is_caught_in_an_nlg_rephrasing(guard_settings):
    guard_settings(LEXICON)
    nlg = RephrasingNLG(
        EndpointConfig(type="components.nlg.rephrasing.RephrasingNLG", warm_up=False), DOMAIN
    )
    reply = "Your refund goes back to the original payment method."
    nlg._client = LLMClient(ScriptedBackend(reply), timeout_s=2.0)
    tracker = DialogueStateTracker.from_events("u1", [UserUttered("where is my refund")])
    response = asyncio.run(nlg.generate("utter_refund", tracker, "rest"))
    assert response["text"] == "Your refund is on its way."  # the template wins
    assert response["metadata"]["kefu_nlg"]["reason"] == "check_failed:guard"
    # with the shipped configuration the same rephrasing is accepted
    set_services(Services(Settings()))
    response = asyncio.run(nlg.generate("utter_refund", tracker, "rest"))
    assert response["text"] == reply


def test_the_knowledge_base_takes_the_services_settings(kefu_home, monkeypatch):
    from components.settings import KnowledgeSettings
    from knowledge.stores import MemoryStore

    monkeypatch.setenv("KEFU_ASSISTANT", "shop")
    monkeypatch.setenv("KEFU_KB_STORE", "pgvector")  # read by load_settings only: not used here
    settings = Settings(knowledge=KnowledgeSettings(min_relevance=0.6))
    knowledge = Services(settings).knowledge
    assert knowledge.settings.min_relevance == 0.6
    # the memory index of the process's assistant, in KEFU_HOME
    assert isinstance(knowledge.store, MemoryStore)
    assert knowledge.store.index_path == kefu_home / "knowledge_index.shop.json"


@pytest.mark.slow  # builds the knowledge index with the MiniLM encoder
def test_the_custom_term_is_masked_in_a_knowledge_answer(guard_settings, tmp_path_factory):
    from actions.actions import ActionAnswerKnowledge
    from components.assistants import get_assistant
    from components.settings import KnowledgeSettings
    from knowledge.index import build_index
    from knowledge.retrieval import KnowledgeBase
    from knowledge.stores import MemoryStore

    store = MemoryStore(tmp_path_factory.mktemp("kb") / "index.json")
    build_index(get_assistant("shop").docs, KnowledgeSettings(), store)
    knowledge = KnowledgeBase(KnowledgeSettings(), store)
    question = "Where does my refund go?"
    latest = {"text": question, "intent": {"name": "ask_policy", "confidence": 1.0}}
    tracker = Tracker(
        "u1",
        {},
        latest,
        [{"event": "user", "text": question, "parse_data": latest}],
        False,
        None,
        {},
        "action_listen",
    )

    def answer() -> str:
        dispatcher = CollectingDispatcher()
        asyncio.run(ActionAnswerKnowledge().run(dispatcher, tracker, {}))
        return dispatcher.messages[0]["text"]

    set_services(Services(Settings(), knowledge=knowledge))
    assert "original payment method" in answer()  # shipped configuration: said as written
    services = guard_settings(LEXICON)
    services._built["knowledge"] = knowledge
    masked = answer()
    assert "original payment method" not in masked and "***" in masked
    assert services.composer._guard is services.guard  # grounded answers are checked with it


def test_learned_recognisers_are_on_by_default_and_can_be_switched_off():
    from components.settings import PrivacySettings

    default = Services(Settings())
    assert default.pii.tagger is not None and default.prompt_masker.tagger is default.pii_tagger
    assert default.guard.classifier is not None
    assert "Sara Schwarz" not in default.pii.mask("hi, Sara Schwarz here")
    off = Services(
        Settings(
            guard=GuardSettings(offensive_classifier=False),
            privacy=PrivacySettings(learned_recogniser=False),
        )
    )
    assert off.pii.tagger is None and off.pii_tagger is None
    assert off.guard.classifier is None
    assert off.pii.mask("hi, Sara Schwarz here") == "hi, Sara Schwarz here"
    mask = Services(Settings(guard=GuardSettings(offensive_action="mask")))
    assert mask.guard.offensive_action == "mask"
