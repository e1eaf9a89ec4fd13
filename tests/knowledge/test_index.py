import json
import shutil

import pytest

from components.errors import KnowledgeBaseError
from knowledge.__main__ import main as cli
from knowledge.index import DOCS_DIR, build_index, load_documents
from knowledge.retrieval import KnowledgeBase


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    path = tmp_path_factory.mktemp("kb") / "index.json"
    build_index(DOCS_DIR, path)
    return path


@pytest.fixture(scope="module")
def kb(index) -> KnowledgeBase:
    kb = KnowledgeBase(index)
    kb.warm_up()
    return kb


def test_sections_keep_source_title_and_section():
    docs = load_documents(DOCS_DIR)
    assert {d.meta["source"] for d in docs} == {
        "shipping.md",
        "returns.md",
        "refunds.md",
        "warranty.md",
        "payment.md",
    }
    refunds = [d for d in docs if d.meta["source"] == "refunds.md"]
    assert all(d.meta["title"] == "Refunds policy" for d in refunds)
    assert "When you get your money back" in {d.meta["section"] for d in refunds}


def test_rebuild_is_skipped_when_nothing_changed(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(DOCS_DIR, docs)
    path = tmp_path / "index.json"
    assert build_index(docs, path)["rebuilt"] is True
    assert build_index(docs, path)["rebuilt"] is False
    (docs / "gift-cards.md").write_text("# Gift cards\n\nGift cards never expire.\n")
    stats = build_index(docs, path)
    assert stats["rebuilt"] is True and stats["documents"] == 6
    stored = json.loads(path.read_text())
    assert any(d["meta"]["source"] == "gift-cards.md" for d in stored["documents"])


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("how long do refunds take?", "refunds.md"),
        ("when will I get my money back", "refunds.md"),
        ("do you ship to Canada", "shipping.md"),
        ("can I pay with Alipay", "payment.md"),
        ("what payment methods do you accept?", "payment.md"),
        ("is water damage covered", "warranty.md"),
        ("can I return underwear", "returns.md"),
    ],
)
def test_answers_name_the_right_document(kb, question, source):
    answer = kb.answer(question)
    assert answer.found
    assert answer.source == source
    assert answer.text
    assert answer.sources[0]["source"] == source


@pytest.mark.parametrize("question", ["what is the capital of France", "asdkjh qwe zzz", "", "   "])
def test_unrelated_questions_are_refused(kb, question):
    assert not kb.answer(question).found


def test_missing_index_says_how_to_build_it(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="knowledge build"):
        KnowledgeBase(tmp_path / "nope.json").warm_up()


def test_cli_build_and_ask(tmp_path, capsys):
    path = tmp_path / "cli.json"
    assert cli(["build", "--index", str(path)]) == 0
    assert cli(["ask", "how much does express delivery cost", "--index", str(path)]) == 0
    assert "shipping.md" in capsys.readouterr().out
    assert cli(["ask", "hi", "--index", str(tmp_path / "missing.json")]) == 2


def test_empty_docs_folder_is_an_error(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="no Markdown"):
        build_index(tmp_path, tmp_path / "i.json")
