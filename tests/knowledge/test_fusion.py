import pytest
from haystack import Document

from knowledge.fusion import WeightedRankFusion


def docs(*ids, score=None):
    return [Document(id=i, content=i, score=score) for i in ids]


def test_weights_follow_the_named_inputs():
    dense, bm25 = docs("a", "b", score=0.9), docs("b", "c", score=7.0)
    dense_first = WeightedRankFusion(dense_weight=1.0, bm25_weight=0.0).run(dense, bm25)
    assert [d.id for d in dense_first["documents"]][:2] == ["a", "b"]
    bm25_first = WeightedRankFusion(dense_weight=0.0, bm25_weight=1.0).run(dense, bm25)
    assert [d.id for d in bm25_first["documents"]][:2] == ["b", "c"]


def test_documents_in_both_rankings_win_and_keep_their_dense_score():
    out = WeightedRankFusion().run(docs("a", "b", score=0.8), docs("b", "c", score=3.0))[
        "documents"
    ]
    assert out[0].id == "b"
    assert out[0].meta["dense_score"] == 0.8
    assert next(d for d in out if d.id == "c").meta["dense_score"] is None


def test_bad_weights():
    with pytest.raises(ValueError):
        WeightedRankFusion(dense_weight=0, bm25_weight=0)
