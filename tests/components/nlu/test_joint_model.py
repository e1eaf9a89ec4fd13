"""Exact character offsets for entity labels and decoded spans (en and zh)."""

import ast
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from components.bio import EntitySpan, tag_ids
from components.bio import expand_to_word as _expand_to_word
from components.model_prep import minilm_path
from components.nlu.joint_model import JointClassifier
from components.nlu.persistence import from_pretrained, load, load_tokenizer, save
from components.nlu.training import (
    Example,
    calibrate,
    fit,
    init_intent_head,
    paired_order,
    supervised_contrastive_loss,
)


@pytest.fixture(scope="module")
def classifier() -> JointClassifier:
    tokenizer = load_tokenizer(minilm_path())
    return JointClassifier(tokenizer, model=None, intents=["x"], tags=["O", "B-id", "I-id"])


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("where is order KF100234 now", 15, 23),
        ("查一下订单KF100234谢谢", 5, 13),
        ("订单号是 kf103300", 5, 13),
        ("寄到北京市朝阳区", 2, 8),
    ],
)
def test_labels_and_decoding_round_trip(classifier, text, start, end):
    enc = classifier.encode([text])
    offsets = enc["offset_mapping"][0]
    targets = tag_ids(offsets.tolist(), [EntitySpan(start, end, "id")], classifier.tags)
    # turn the gold tags into one-hot "probabilities" and decode them back
    probs = torch.zeros(len(targets), 3)
    for i, t in enumerate(targets):
        probs[i, max(t, 0)] = 1.0
    entities = classifier._decode(text, offsets.tolist(), probs)
    assert [(e["start"], e["end"], e["value"]) for e in entities] == [(start, end, text[start:end])]


def test_partial_word_spans_grow_to_the_word():
    text = "order KF100234!"
    assert _expand_to_word(text, 8, 11) == (6, 14)
    assert _expand_to_word("订单KF1", 2, 4) == (2, 5)


TRAIN = {
    "greet": ["hi", "hello", "hey there", "good morning", "hello friend", "hiya", "howdy"],
    "order_status": [
        "where is my order",
        "track my parcel",
        "has my order shipped",
        "when will my package arrive",
        "status of my delivery",
        "check my order",
        "is my order on the way",
    ],
    "refund": [
        "I want my money back",
        "refund please",
        "how do refunds work",
        "return this for a refund",
        "when do I get my refund",
        "can I get a refund",
        "give me back my money",
    ],
}


@pytest.mark.slow
def test_temperature_scaling_keeps_rankings_and_fits_held_back_data():
    examples = [Example(t, intent, []) for intent, texts in TRAIN.items() for t in texts]
    classifier = from_pretrained(minilm_path(), sorted(TRAIN), [], 32, 0.1, 3)
    fit(
        classifier,
        examples,
        epochs=6,
        batch_size=8,
        learning_rate=5e-5,
        head_learning_rate=1e-3,
        seed=3,
    )
    texts = ["hello, where is my parcel?", "money back please", "good morning"]
    rankings, tops = [], []
    for temperature in (0.25, 0.5, 1.0, 2.0, 4.0):
        classifier.temperature = temperature
        predictions = classifier.predict(texts)
        rankings.append([[name for name, _ in p.intent_ranking] for p in predictions])
        tops.append([p.intent_ranking[0][1] for p in predictions])
    assert all(r == rankings[0] for r in rankings)  # temperature never reorders intents
    for i in range(len(texts)):  # hotter -> less confident, monotonically
        confidences = [t[i] for t in tops]
        assert all(a > b for a, b in pairwise(confidences))

    held_back = [
        Example("hey", "greet", []),
        Example("where's my package", "order_status", []),
        Example("I'd like a refund", "refund", []),
        Example("good evening", "greet", []),
        Example("did my order ship yet", "order_status", []),
    ]
    logits = classifier.intent_logits([e.text for e in held_back])
    targets = torch.tensor([classifier.intents.index(e.intent) for e in held_back])
    before = torch.nn.functional.cross_entropy(logits, targets).item()
    fitted = calibrate(classifier, held_back)
    after = torch.nn.functional.cross_entropy(logits / fitted, targets).item()
    assert 0.05 <= fitted <= 20 and classifier.temperature == fitted
    assert after <= before + 1e-6


def test_supervised_contrastive_loss_prefers_clusters():
    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    assert supervised_contrastive_loss(clustered, labels) < supervised_contrastive_loss(
        mixed, labels
    )
    alone = supervised_contrastive_loss(clustered, torch.tensor([0, 1, 2, 3]))
    assert alone.item() == 0.0  # no same-intent partner in the batch: no signal


def test_paired_order_puts_same_intent_pairs_side_by_side():
    import random

    intents = ["a"] * 5 + ["b"] * 4 + ["c"] * 1
    order = paired_order(intents, random.Random(0))
    assert sorted(order) == list(range(len(intents)))
    assert order == paired_order(intents, random.Random(0))  # deterministic for a seed
    pairs = 0
    position = 0
    while position < len(order) - 1:
        if intents[order[position]] == intents[order[position + 1]]:
            pairs += 1
            position += 2
        else:
            position += 1
    assert pairs == 4  # a: 2 pairs + leftover, b: 2 pairs, c: leftover


@pytest.mark.slow
def test_few_shot_training_starts_from_prototypes_and_is_deterministic():
    examples = [Example(t, intent, []) for intent, texts in TRAIN.items() for t in texts]
    classifier = from_pretrained(minilm_path(), sorted(TRAIN), [], 32, 0.1, 5)
    init_intent_head(classifier, examples)  # nearest class mean, before any training
    predictions = classifier.predict([e.text for e in examples])
    correct = sum(
        p.intent_ranking[0][0] == e.intent for p, e in zip(predictions, examples, strict=True)
    )
    assert correct / len(examples) >= 0.9
    assert classifier.model.intent_head.bias.abs().sum().item() == 0.0

    histories, rankings = [], []
    reporter = Reporter()
    for run in range(2):
        model = from_pretrained(minilm_path(), sorted(TRAIN), [], 32, 0.1, 5)
        init_intent_head(model, examples)
        histories.append(
            fit(
                model,
                examples,
                epochs=2,
                batch_size=4,
                learning_rate=5e-5,
                head_learning_rate=1e-3,
                seed=5,
                contrastive_weight=1.0,
                reporter=reporter if run else None,  # reporting changes nothing
            )  # fmt: skip
        )
        rankings.append([p.intent_ranking for p in model.predict(["hello there"])])
    assert histories[0] == histories[1] and rankings[0] == rankings[1]  # same seed, same run
    assert rankings[0][0][0][0] == "greet"
    # 21 examples in batches of 4: 6 steps per epoch, every step and epoch reported
    assert reporter.calls[0] == ("start", 2, 6) and reporter.calls[-1] == ("close",)
    assert [c[0] for c in reporter.calls].count("step") == 12
    assert [c[1:] for c in reporter.calls if c[0] == "epoch_end"] == [
        (1, histories[1][0]),
        (2, histories[1][1]),
    ]


class Reporter:
    """Records what fit() reports (a components.nlu.progress.ProgressReporter)."""

    def __init__(self):
        self.calls = []

    def start(self, epochs, steps_per_epoch):
        self.calls.append(("start", epochs, steps_per_epoch))

    def step(self, loss):
        self.calls.append(("step", loss))

    def epoch_end(self, epoch, mean_loss):
        self.calls.append(("epoch_end", epoch, mean_loss))

    def close(self):
        self.calls.append(("close",))


def test_adjacent_chinese_entities_of_one_type_stay_apart(classifier):
    # tags: O, B-id, I-id; 北京上海 tagged B I B I -> two spans, KF12 pieces B B -> one word
    def probs(tags):
        out = torch.zeros(len(tags), 3)
        for row, tag in enumerate(tags):
            out[row, tag] = 1.0
        return out

    zh = classifier._decode("北京上海", [[0, 1], [1, 2], [2, 3], [3, 4]], probs([1, 2, 1, 2]))
    assert [(e["start"], e["end"]) for e in zh] == [(0, 2), (2, 4)]
    en = classifier._decode("KF12", [[0, 2], [2, 4]], probs([1, 1]))
    assert [(e["start"], e["end"]) for e in en] == [(0, 4)]


@pytest.mark.slow  # fine-tunes MiniLM
def test_unknown_chinese_characters_become_trained_tokens(tmp_path):
    # MiniLM's vocabulary has 我 but not 退/鞋/袜 (they read as [UNK] and look alike)
    train = [
        Example("退鞋子", "return_shoes", [EntitySpan(1, 2, "item")]),
        Example("我要退鞋", "return_shoes", [EntitySpan(3, 4, "item")]),
        Example("退袜子", "return_socks", [EntitySpan(1, 2, "item")]),
        Example("我要退袜", "return_socks", [EntitySpan(3, 4, "item")]),
    ]
    plain = from_pretrained(minilm_path(), ["return_shoes", "return_socks"], ["item"], 32, 0.0, 3)
    unk = plain.tokenizer.unk_token_id
    assert plain.tokenizer("鞋袜")["input_ids"][1:-1] == [unk, unk]

    extended = from_pretrained(
        minilm_path(),
        ["return_shoes", "return_socks"],
        ["item"],
        32,
        0.0,
        3,
        texts=[e.text for e in train],
    )
    ids = extended.tokenizer("鞋袜")["input_ids"][1:-1]
    assert unk not in ids and ids[0] != ids[1]
    known = plain.tokenizer("我")["input_ids"]
    assert unk not in known and extended.tokenizer("我")["input_ids"] == known
    # offsets stay per character, so entity spans are still exact
    enc = extended.encode(["我要退鞋"])
    assert enc["offset_mapping"][0].tolist()[1:-1] == [[0, 1], [1, 2], [2, 3], [3, 4]]

    fit(
        extended,
        train,
        epochs=30,
        batch_size=4,
        learning_rate=5e-5,
        head_learning_rate=1e-2,
        seed=3,
    )
    predicted = [p.intent_ranking[0][0] for p in extended.predict(["退鞋", "退袜"])]
    assert predicted == ["return_shoes", "return_socks"]
    save(extended, tmp_path / "model")
    loaded = load(tmp_path / "model")
    again = loaded.predict(["退鞋", "退袜"])
    assert [p.intent_ranking[0][0] for p in again] == predicted
    before = dict(extended.predict(["退鞋"])[0].intent_ranking)
    assert dict(again[0].intent_ranking) == pytest.approx(before, rel=1e-4, abs=1e-6)


ENGINE = ("joint_model", "training", "persistence", "progress")


@pytest.mark.parametrize("name", ENGINE)
def test_engine_modules_never_import_rasa(name):
    source = Path(__file__).resolve().parents[3] / "components" / "nlu" / f"{name}.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text())):  # also imports inside functions
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"rasa", "rasa_sdk"}


def test_engine_loads_without_rasa():
    modules = ", ".join(f"components.nlu.{name}" for name in ENGINE)
    code = f"import sys, {modules}; print([m for m in ('rasa', 'rasa_sdk') if m in sys.modules])"
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
