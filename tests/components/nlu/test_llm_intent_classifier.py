"""Few-shot LLM intent mode: nearest examples in the prompt, the real bundled LLM picks."""

import pytest
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.errors import ConfigError
from components.nlu.llm_intent_classifier import FewShotLLMIntentClassifier as Classifier

EXAMPLES = {
    "greet": ["hi", "hello", "good morning", "hey there", "hello friend"],
    "order_status": [
        "where is my order",
        "track my parcel",
        "has my order shipped",
        "order status",
    ],
    "refund": ["I want my money back", "refund please", "how do refunds work", "get a refund"],
}


def _component(model_storage, resource, execution_context, **config) -> Classifier:
    return Classifier.create(
        {**Classifier.get_default_config(), **config}, model_storage, resource, execution_context
    )


def _data() -> TrainingData:
    return TrainingData(
        [Message.build(t, intent) for intent, texts in EXAMPLES.items() for t in texts]
    )


@pytest.mark.parametrize(
    ("answer", "intent"),
    [
        ("refund", "refund"),
        ("Intent: order_status.", "order_status"),
        ("GREET", "greet"),
        ("greet or refund", None),  # two intents: undecided
        ("I am not sure", None),
        ("", None),
    ],
)
def test_answers_map_to_one_intent_or_none(model_storage, resource, execution_context, answer,
                                           intent):  # fmt: skip
    component = Classifier(
        Classifier.get_default_config(),
        model_storage,
        resource,
        execution_context,
        examples=[{"text": t, "intent": i} for i, ts in EXAMPLES.items() for t in ts],
    )
    assert component.parse(answer) == intent


@pytest.mark.parametrize(
    "config", [{"examples_per_prompt": 0}, {"llm": "smol"}, {"timeout": 0}, {"cache_size": "x"}]
)
def test_bad_config_names_the_key(model_storage, resource, execution_context, config):
    with pytest.raises(ConfigError, match=next(iter(config))):
        Classifier(config, model_storage, resource, execution_context)


def test_untrained_component_gives_the_fallback(model_storage, resource, execution_context):
    component = _component(model_storage, resource, execution_context)
    message = Message.build("where is my order")
    component.process([message])
    assert message.get("intent") == {"name": "nlu_fallback", "confidence": 0.0}


@pytest.mark.slow
def test_round_trip_with_the_real_llm_and_a_dead_server(model_storage, resource, execution_context):
    component = _component(model_storage, resource, execution_context, timeout=30.0)
    component.train(_data())
    loaded = Classifier.load(
        {**Classifier.get_default_config(), "timeout": 30.0},
        model_storage,
        resource,
        execution_context,
    )
    messages = [Message.build("hello!"), Message.build("I'd like a refund"), Message.build("")]
    loaded.process(messages)
    for message in messages:
        intent = message.get("intent")
        assert intent["name"] in {*EXAMPLES, "nlu_fallback"}
        assert 0.0 <= intent["confidence"] <= 1.0
    assert messages[2].get("intent") == {"name": "nlu_fallback", "confidence": 0.0}
    chat, shown = loaded.prompt("money back", loaded.embed(["money back"])[0])
    assert shown[0]["intent"] == "refund"  # the nearest example leads the prompt
    cached = dict(loaded._cache)
    loaded.process([Message.build("hello!")])
    assert dict(loaded._cache) == cached  # answered from the cache

    dead = Classifier.load(
        {
            **Classifier.get_default_config(),
            "llm": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "retries": 0},
        },
        model_storage,
        resource,
        execution_context,
    )
    message = Message.build("where is my parcel")
    dead.process([message])
    assert message.get("intent") == {"name": "nlu_fallback", "confidence": 0.0}
