"""Sentence reranking: the best sentence lifts a long passage, FAQ entries keep their score."""

import numpy as np
import pytest
from haystack import Document

from components.model_prep import minilm_path
from knowledge.rerank import SentenceReranker, passage_sentences

LONG = (
    "The warranty covers manufacturing defects and failures in normal use. It does not cover "
    "accidental damage or water damage. Batteries and straps wear normally. If an electronic "
    "item does not work when it arrives, tell us within 7 days and we replace it."
)
OTHER = "Return shipping is free for faulty items. Other returns cost 10 CNY for the label."


@pytest.fixture(scope="module")
def reranker() -> SentenceReranker:
    ranker = SentenceReranker(model=str(minilm_path()), weight=0.5, top_k=5, cache_size=2)
    ranker.warm_up()
    return ranker


def _query(ranker: SentenceReranker, text: str) -> list[float]:
    return ranker._encoder.embed([text], normalize_embeddings=True)[0]


@pytest.mark.slow
def test_best_sentence_lifts_a_long_passage(reranker):
    docs = [
        Document(id="other", content=OTHER, score=0.40),
        Document(id="long", content=LONG, score=0.38),
    ]
    query = _query(reranker, "my headphones did not work when they arrived")
    ranked = reranker.run(documents=docs, query_embedding=query)["documents"]
    assert [d.id for d in ranked] == ["long", "other"]
    assert ranked[0].meta["fused_score"] == 0.38
    assert ranked[0].meta["sentence_score"] > ranked[1].meta["sentence_score"]


@pytest.mark.slow
def test_a_passage_heading_is_scored_like_a_sentence(reranker):
    heading = "Shipping policy: Delivery times and costs"
    meta = {
        "title": "Shipping policy",
        "section": "Delivery times and costs",
        "body": "It is 8 CNY.",
    }
    doc = Document(id="costs", content=f"{heading}\nIt is 8 CNY.", meta=meta)
    assert passage_sentences(doc) == [heading, "It is 8 CNY."]
    intro = {"title": "Shipping policy", "section": "Shipping policy", "body": "We ship."}
    assert passage_sentences(Document(content="x", meta=intro)) == ["Shipping policy", "We ship."]
    assert passage_sentences(Document(content="Plain text.")) == ["Plain text."]
    query = _query(reranker, "what does shipping cost?")
    (ranked,) = reranker.run(documents=[doc], query_embedding=query)["documents"]
    body_only = float(np.dot(_query(reranker, "It is 8 CNY."), query))
    assert ranked.meta["sentence_score"] > body_only  # the heading carries the topic


@pytest.mark.slow
def test_faq_entries_are_scored_by_their_question(reranker):
    faq = Document(id="faq", content="Q + A", meta={"faq_question": "Do you ship to Canada?"})
    assert passage_sentences(faq) == ["Do you ship to Canada?"]
    query = _query(reranker, "Do you ship to Canada?")
    (ranked,) = reranker.run(documents=[faq], query_embedding=query)["documents"]
    assert ranked.meta["sentence_score"] == pytest.approx(1.0, abs=1e-3)


@pytest.mark.slow
def test_weight_zero_keeps_the_order_and_cache_is_bounded(reranker):
    docs = [
        Document(id=str(i), content=f"Sentence number {i}.", score=1 - i / 10) for i in range(4)
    ]
    off = SentenceReranker(model=str(minilm_path()), weight=0.0, top_k=3)
    assert [d.id for d in off.run(documents=docs, query_embedding=[0.0] * 384)["documents"]] == [
        "0",
        "1",
        "2",
    ]
    query = np.ones(384, dtype=np.float32).tolist()
    reranker.run(documents=docs, query_embedding=query)
    assert len(reranker._cache) <= 2
    assert reranker.run(documents=[], query_embedding=query)["documents"] == []


@pytest.mark.parametrize("bad", [{"weight": 1.5}, {"weight": -0.1}, {"top_k": 0}])
def test_bad_settings_are_named(bad):
    with pytest.raises(ValueError):
        SentenceReranker(model="x", **bad)


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory) -> str:
    """A real cross-encoder folder (BERT + one-logit head) built from the bundled MiniLM.

    Its head is untrained, so only the wiring is tested here: no trained cross-encoder ships
    offline.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("cross_encoder")
    model = AutoModelForSequenceClassification.from_pretrained(str(minilm_path()), num_labels=1)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(folder)
    return str(folder)


@pytest.mark.slow
def test_cross_encoder_orders_the_candidates_last(tmp_path, cross_encoder_dir):
    from components.settings import KnowledgeSettings
    from knowledge.index import build_index
    from knowledge.retrieval import KnowledgeBase
    from knowledge.stores import MemoryStore
    from tests.knowledge import SHOP_DOCS

    store = MemoryStore(tmp_path / "index.json")
    build_index(SHOP_DOCS, KnowledgeSettings(), store)
    kb = KnowledgeBase(KnowledgeSettings(cross_encoder=cross_encoder_dir), store)
    ranked = kb.retrieve("how long do refunds take?")
    scores = [d.meta["cross_score"] for d in ranked]
    assert ranked and scores == sorted(scores, reverse=True)
    assert all("sentence_score" in d.meta and "dense_score" in d.meta for d in ranked)


def test_missing_cross_encoder_folder_is_a_config_error(tmp_path):
    from components.errors import ConfigError
    from components.settings import load_settings

    environ = {"KEFU_KB_CROSS_ENCODER": str(tmp_path / "nope")}
    with pytest.raises(ConfigError, match="KEFU_KB_CROSS_ENCODER"):
        load_settings(tmp_path / "none.yml", environ=environ)
