"""The Chinese encoder (multilingual-e5): its prefixes everywhere it embeds, its calibration."""

import json
import shutil

import numpy as np
import pytest
from haystack import Document

from components.model_prep import minilm_path
from components.settings import KnowledgeSettings
from knowledge.encoders import (
    E5,
    E5_BASE_ZH,
    E5_TUNED_DELTA,
    E5_TUNED_ZH,
    NONE,
    PLAIN_ZH,
    chinese_calibration,
    prefixes_for,
)
from knowledge.fusion import HybridRanker
from knowledge.index import KnowledgeIndex, build_index
from knowledge.rerank import SentenceReranker, passage_sentences
from knowledge.retrieval import KnowledgeBase
from knowledge.stores import MemoryStore
from tests.knowledge import SHOP_DOCS


def e5_like(folder):
    """A folder that declares e5's prompts the way sentence-transformers stores them."""
    folder.mkdir(exist_ok=True)
    prompts = {"prompts": {"query": "query: ", "passage": "passage: "}}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(prompts))
    return folder


def test_e5_gets_its_prefixes_and_minilm_none(tmp_path):
    assert prefixes_for(e5_like(tmp_path / "e5")) == E5
    assert E5.unit("运费多少", question=True) == "query: 运费多少"
    assert E5.unit("订单满99元包邮。", question=False) == "passage: 订单满99元包邮。"
    assert prefixes_for(minilm_path()) is NONE and prefixes_for(None) is NONE
    assert NONE.unit("how much is shipping", question=True) == "how much is shipping"
    assert chinese_calibration(minilm_path()) is PLAIN_ZH


def test_each_e5_model_has_its_own_gate(tmp_path, caplog):
    assert chinese_calibration(e5_like(tmp_path / "base")) is E5_BASE_ZH  # e5 as released
    tuned = e5_like(tmp_path / "tuned")
    (tuned / "kefu-encoder.json").write_text(json.dumps({"delta_sha256": E5_TUNED_DELTA}))
    assert chinese_calibration(tuned) is E5_TUNED_ZH
    assert E5_TUNED_ZH.min_relevance != E5_BASE_ZH.min_relevance
    other = e5_like(tmp_path / "retrained")
    (other / "kefu-encoder.json").write_text(json.dumps({"delta_sha256": "0" * 64}))
    assert chinese_calibration(other) is E5_TUNED_ZH
    assert "knowledge.uncalibrated_encoder" in caplog.text  # a new delta: re-derive


@pytest.mark.slow
def test_the_gate_takes_the_encoders_calibration_unless_set(zh_kb):
    from dataclasses import replace

    calibration = zh_kb._stages.zh_calibration
    settings = zh_kb.settings
    try:
        zh_kb.settings = replace(settings, zh_dense_share=None, min_zh_relevance=None)
        assert zh_kb._zh_gate() == (calibration.gate_dense_share, calibration.min_relevance)
        zh_kb.settings = replace(settings, zh_dense_share=0.5, min_zh_relevance=0.7)
        assert zh_kb._zh_gate() == (0.5, 0.7)
    finally:
        zh_kb.settings = settings


def test_sentences_and_faq_questions_get_their_prefixes():
    meta = {"title": "配送政策", "section": "配送时效及运费", "body": "运费8元。国际运费60元。"}
    doc = Document(content="x", meta=meta)
    assert passage_sentences(doc, prefixes=E5) == [
        "passage: 配送政策: 配送时效及运费",
        "passage: 运费8元。",
        "passage: 国际运费60元。",
    ]
    faq = Document(content="Q + A", meta={"faq_question": "可以开发票吗"})
    assert passage_sentences(faq, prefixes=E5) == ["query: 可以开发票吗"]  # question to question
    assert passage_sentences(doc) == ["配送政策: 配送时效及运费", "运费8元。", "国际运费60元。"]


def test_minmax_scaling_lets_compressed_cosines_count():
    # e5-like cosines (0.84 vs 0.88) and a BM25 hit that favours the other passage
    dense = [
        Document(id="fee", content="fee", score=0.88),
        Document(id="ref", content="r", score=0.84),
    ]
    bm25 = [
        Document(id="ref", content="r", score=5.0),
        Document(id="fee", content="fee", score=3.5),
    ]
    weights = {"passage_dense_weight": 0.6, "passage_bm25_weight": 0.4}
    raw = HybridRanker(**weights).run(dense, bm25)["documents"]
    scaled = HybridRanker(**weights, dense_scale="minmax").run(dense, bm25)["documents"]
    assert raw[0].id == "ref" and scaled[0].id == "fee"
    assert scaled[0].meta["dense_score"] == 0.88  # the gate still reads the raw cosine
    with pytest.raises(ValueError, match="dense_scale"):
        HybridRanker(dense_scale="zscore")


@pytest.fixture(scope="module")
def zh_kb(tmp_path_factory) -> KnowledgeBase:
    """The shop's Chinese policies, with the default Chinese encoder (multilingual-e5)."""
    docs = tmp_path_factory.mktemp("docs")
    for path in SHOP_DOCS.glob("*.zh.md"):
        shutil.copy(path, docs / path.name)
    store = MemoryStore(tmp_path_factory.mktemp("kb") / "index.json")
    build_index(docs, KnowledgeSettings(), store)
    kb = KnowledgeBase(KnowledgeSettings(), store)
    kb.warm_up()
    if kb._stages.zh_embedder is None or prefixes_for(kb._stages.zh_embedder.model) != E5:
        pytest.skip("the multilingual-e5 encoder is not available")
    return kb


@pytest.mark.slow
def test_chinese_questions_and_passages_are_embedded_with_the_e5_prefixes(zh_kb):
    embedder = zh_kb._stages.zh_embedder
    assert embedder.prefix == "query: "
    backend = embedder.embedding_backend
    passage = next(
        d for d in zh_kb.store.open().filter_documents() if d.meta.get("section") == "发票"
    )
    stored = np.asarray(passage.embedding)
    with_prefix, without = backend.embed(
        [f"passage: {passage.content}", passage.content], normalize_embeddings=True
    )
    assert stored @ np.asarray(with_prefix) == pytest.approx(1.0, abs=1e-4)
    assert stored @ np.asarray(without) < stored @ np.asarray(with_prefix)
    query = np.asarray(embedder.run(text="可以开发票吗")["embedding"])
    (expected,) = backend.embed(["query: 可以开发票吗"], normalize_embeddings=True)
    assert query @ np.asarray(expected) == pytest.approx(1.0, abs=1e-4)
    assert zh_kb._stages.zh_calibration in (E5_TUNED_ZH, E5_BASE_ZH)
    assert zh_kb._stages.zh_ranker.dense_scale == "minmax"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "source", "section"),
    [
        ("运费多少", "shipping.zh.md", "配送时效及运费"),  # not partial refunds ("扣除运费")
        ("电子发票怎么拿", "payment.zh.md", "发票"),
        ("用过的东西退回来钱会少吗", "refunds.zh.md", "部分退款"),
        ("东西摔坏了保修管不管", "warranty.zh.md", "保修范围"),  # accidental damage
        ("寄到国外要几天", "shipping.zh.md", None),
        ("质量没问题也能退货吗", "returns.zh.md", None),
    ],
)
def test_a_chinese_question_ranks_the_right_passage_first(zh_kb, question, source, section):
    ranked = zh_kb.retrieve(question, language="zh")
    top = ranked[0].meta
    assert top["source"] == source, [(d.meta["source"], d.meta["section"]) for d in ranked[:3]]
    assert section is None or top["section"] == section, [d.meta["section"] for d in ranked[:3]]


@pytest.mark.slow
def test_the_e5_reranker_embeds_sentences_after_passage(zh_kb):
    folder = zh_kb._stages.zh_embedder.model
    reranker = SentenceReranker(model=folder, weight=0.5)
    assert reranker.prefixes == E5
    reranker.warm_up()
    doc = Document(id="fee", content="运费8元。", meta={"body": "运费8元。"})
    matrix = reranker._sentence_matrix([doc])[0]  # one unit: the body's one sentence
    (expected,) = reranker._encoder.embed(["passage: 运费8元。"], normalize_embeddings=True)
    assert float(matrix[0] @ np.asarray(expected)) == pytest.approx(1.0, abs=1e-4)


def test_the_index_fingerprint_names_the_prefixes(tmp_path):
    index = KnowledgeIndex(
        KnowledgeSettings(zh_encoder=str(e5_like(tmp_path / "e5"))),
        MemoryStore(tmp_path / "index.json"),
        encoder=str(minilm_path()),
    )
    fingerprint = index._fingerprint()
    assert fingerprint.startswith("v4|") and "e5+e5" in fingerprint and "+plain" in fingerprint


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("运费多少", "shipping.zh.md"),
        ("质量没问题也能退货吗", "returns.zh.md"),
        ("帮我订一张去北京的机票", None),
        ("你们老板今年多大了", None),
    ],
)
def test_the_default_chinese_gate_answers_and_refuses(zh_kb, question, source):
    answer = zh_kb.answer(question)
    assert (answer.source if answer.found else None) == source, answer.score
