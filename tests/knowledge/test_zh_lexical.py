"""Chinese lexical matching: jieba words + characters, BM25 and the gate's support."""

import shutil

import pytest
from haystack import Document

from knowledge.zh_lexical import ChineseBM25, ChineseTermStatistics, zh_terms

PASSAGES = [
    "退货政策\n大部分商品在签收后30天内可以无理由退货，商品需未使用、配件齐全。",
    "保修政策\n电子产品自签收之日起保修12个月，手表机芯保修24个月。",
    "配送政策\n中国大陆标准配送2至4个工作日送达，订单满99元包邮。",
]


def test_terms_are_words_and_characters_without_function_words():
    terms = zh_terms("请问保修期是多久？")
    assert "保修" in terms and "保修期" in terms  # search mode: the word and the longer one
    assert "保" in terms and "修" in terms
    assert "请问" not in terms and "吗" not in terms and "是" not in terms
    assert "paypal" in zh_terms("能用PayPal付款吗")  # Latin words lower-cased
    assert zh_terms("訂單") == zh_terms("订单")  # traditional folded


def test_bm25_ranks_the_passage_that_holds_the_question():
    bm25 = ChineseBM25([Document(content=p) for p in PASSAGES], top_k=2)
    ranked = bm25.run(query="手表保修多久")["documents"]
    assert ranked[0].content.startswith("保修政策") and len(ranked) <= 2
    assert bm25.run(query="股票代码")["documents"] == []


def test_support_weighs_words_over_characters():
    stats = ChineseTermStatistics(PASSAGES)
    assert stats.support("退货要多少天", PASSAGES[0]) > stats.support("退货要多少天", PASSAGES[2])
    assert stats.support("你们公司老板是谁", PASSAGES[0]) < 0.2
    assert stats.support("", PASSAGES[0]) == 0.0


def test_a_follow_ups_own_words_outweigh_the_question_it_follows():
    bm25 = ChineseBM25([Document(content=p) for p in PASSAGES], top_k=3)
    joined = "退货要多少天 那保修呢"
    assert bm25.run(query=joined, emphasis="那保修呢")["documents"][0].content.startswith("保修")


@pytest.mark.slow
def test_a_chinese_only_knowledge_base_takes_the_chinese_path(tmp_path):
    from components.settings import KnowledgeSettings
    from knowledge.index import build_index
    from knowledge.retrieval import KnowledgeBase
    from knowledge.stores import MemoryStore
    from tests.knowledge import SHOP_DOCS

    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SHOP_DOCS / "returns.zh.md", docs / "returns.zh.md")
    store = MemoryStore(tmp_path / "index.json")
    build_index(docs, KnowledgeSettings(), store)
    kb = KnowledgeBase(KnowledgeSettings(), store)
    answer = kb.answer("退货的运费谁出")
    assert kb.passage_language("退货的运费谁出") == "zh" and kb._chinese_path("zh")
    assert answer.found and answer.source == "returns.zh.md"
