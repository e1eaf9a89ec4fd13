import pytest
from haystack import Document

from knowledge.fusion import HybridRanker, normalize_question


def docs(*pairs, embedding=None, faq=False):
    meta = {"faq_question": "q"} if faq else {}
    return [Document(id=i, content=i, score=s, embedding=embedding, meta=meta) for i, s in pairs]


@pytest.mark.parametrize("faq", [True, False])
def test_convex_mode_weighs_the_named_inputs(faq):
    dense = docs(("a", 0.9), ("b", 0.5), faq=faq)
    bm25 = docs(("b", 8.0), ("c", 4.0), faq=faq)
    prefix = "" if faq else "passage_"
    dense_only = HybridRanker(**{f"{prefix}dense_weight": 1.0, f"{prefix}bm25_weight": 0.0})
    assert [d.id for d in dense_only.run(dense, bm25)["documents"]][:2] == ["a", "b"]
    bm25_only = HybridRanker(**{f"{prefix}dense_weight": 0.0, f"{prefix}bm25_weight": 1.0})
    assert [d.id for d in bm25_only.run(dense, bm25)["documents"]][:2] == ["b", "c"]


def test_passages_weigh_shared_words_more_than_faq_entries():
    # same scores: the FAQ entry's ranking follows the cosine, the passage's the words
    for faq, winner in ((True, "a"), (False, "b")):
        dense = docs(("a", 0.60), ("b", 0.55), faq=faq)
        bm25 = docs(("b", 8.0), ("a", 2.0), faq=faq)
        assert HybridRanker().run(dense, bm25)["documents"][0].id == winner


def test_scores_are_kept_in_meta_and_missing_cosines_computed():
    dense = docs(("a", 0.8))
    bm25 = [Document(id="c", content="c", score=3.0, embedding=[1.0, 0.0])]
    out = HybridRanker().run(dense, bm25, query_embedding=[1.0, 0.0])["documents"]
    by_id = {d.id: d for d in out}
    assert by_id["a"].meta["dense_score"] == 0.8
    assert by_id["c"].meta["dense_score"] == pytest.approx(1.0)  # computed from its embedding
    assert by_id["c"].meta["bm25_score"] == 1.0


def test_rrf_mode_ranks_by_position():
    dense, bm25 = docs(("a", 0.9), ("b", 0.1)), docs(("b", 1.0), ("a", 0.1))
    out = HybridRanker(mode="rrf", dense_weight=1, bm25_weight=2).run(dense, bm25)["documents"]
    assert out[0].id == "b"


def test_exact_faq_question_is_boosted():
    faq = Document(id="f", content="x", score=0.5, meta={"faq_question": "How do I pay?"})
    other = Document(id="o", content="y", score=0.6)
    out = HybridRanker().run([other, faq], [], query="how do i pay")["documents"]
    assert out[0].id == "f"
    assert normalize_question("How do I pay？") == normalize_question("how do i pay")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "max"},
        {"dense_weight": 0, "bm25_weight": 0},
        {"dense_weight": -1},
        {"passage_bm25_weight": -0.1},
        {"passage_dense_weight": 0, "passage_bm25_weight": 0},
    ],
)
def test_bad_settings(kwargs):
    with pytest.raises(ValueError):
        HybridRanker(**kwargs)
