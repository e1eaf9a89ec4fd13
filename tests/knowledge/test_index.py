"""Ingestion: formats, incremental updates, removal, bad files, zh and en retrieval."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import knowledge.retrieval
from components.errors import ConfigError, KnowledgeBaseError
from components.settings import KnowledgeSettings, load_settings
from knowledge.__main__ import main as cli
from knowledge.converters import UnsupportedFileError, convert_file, split_sentences
from knowledge.index import KnowledgeIndex, build_index
from knowledge.retrieval import KnowledgeBase
from knowledge.stores import MemoryStore, PgvectorStore, store_from_settings
from tests.knowledge import SHOP_DOCS

SETTINGS = KnowledgeSettings()


def tiny_pdf(text: str) -> bytes:
    """A valid one-page PDF showing ``text`` (Helvetica), offsets computed for the xref."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


@pytest.fixture
def library(tmp_path) -> Path:
    """A folder with one file of each supported kind, plus broken ones."""
    lib = tmp_path / "library"
    lib.mkdir()
    (lib / "gift-cards.md").write_text(
        "# Gift cards\n\n## Expiry\nDemo Shop gift cards never expire.\n", encoding="utf-8"
    )
    (lib / "stores.html").write_text(
        "<html><head><title>Our stores</title><script>var x=1;</script></head><body>"
        "<h2>Opening hours</h2><p>The Shanghai store opens 10:00 to 22:00 every day.</p>"
        "</body></html>",
        encoding="utf-8",
    )
    (lib / "notes.txt").write_text("Loyalty points are credited 14 days after delivery.\n")
    (lib / "membership.pdf").write_bytes(tiny_pdf("Gold members get free express delivery."))
    (lib / "faq.csv").write_text(
        "question,answer\nCan I change my delivery address?,Yes, until the order ships.\n"
    )
    (lib / "faq_zh.jsonl").write_text(
        json.dumps(
            {"question": "发票怎么开", "answer": "电子发票在收货后两个工作日内发送到邮箱。"},
            ensure_ascii=False,
        )
        + "\n"
        + json.dumps(
            {"question": "可以货到付款吗", "answer": "中国大陆订单低于2000元支持货到付款。"},
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    (lib / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (lib / "bad.jsonl").write_text(
        '{"question": "answered", "answer": "yes"}\n{"question": "no answer field"}\n'
    )
    (lib / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    return lib


@pytest.mark.slow
def test_every_format_is_ingested_and_bad_files_are_skipped(make_store, library):
    index = KnowledgeIndex(SETTINGS, make_store())
    report = index.ingest([library], progress=False)
    assert sorted(report.added) == sorted(
        ["gift-cards.md", "stores.html", "notes.txt", "membership.pdf", "faq.csv", "faq_zh.jsonl"]
    )
    assert sorted(report.failed) == ["bad.jsonl", "broken.pdf", "latin1.txt"]
    assert "row 2 has no 'answer'" in report.failed["bad.jsonl"]
    names = {s["name"] for s in index.sources()}
    assert "stores.html" in names and "broken.pdf" not in names
    assert index.stats()["sections"] == report.sections == 7

    kb = KnowledgeBase(SETTINGS, make_store())
    for question, source in [
        ("do gift cards expire", "gift-cards.md"),
        ("when does the Shanghai store open", "stores.html"),
        ("do gold members pay for express delivery", "membership.pdf"),
        ("can I change the delivery address", "faq.csv"),
        ("发票怎么开？", "faq_zh.jsonl"),
        ("能货到付款吗", "faq_zh.jsonl"),
    ]:
        answer = kb.answer(question)
        assert answer.found and answer.source == source, question
    assert kb.answer("可以货到付款吗").text.startswith("中国大陆订单")
    assert not kb.answer("明天杭州天气怎么样").found


@pytest.mark.slow
def test_incremental_update_and_remove(make_store, library):
    index = KnowledgeIndex(SETTINGS, make_store())
    index.ingest([library], progress=False)
    again = index.ingest([library], progress=False)
    assert not again.changed and "gift-cards.md" in again.unchanged

    (library / "gift-cards.md").write_text("# Gift cards\n\nGift cards expire after 3 years.\n")
    (library / "notes.txt").unlink()
    report = index.ingest([library], prune=True, progress=False)
    assert report.updated == ["gift-cards.md"] and report.removed == ["notes.txt"]
    kb = KnowledgeBase(SETTINGS, make_store())
    assert "3 years" in kb.answer("do gift cards expire").text
    assert (
        not KnowledgeBase(SETTINGS, make_store()).answer("when are loyalty points credited").found
    )

    assert index.remove("stores.html") == ["stores.html"]
    assert "stores.html" not in {s["name"] for s in index.sources()}
    with pytest.raises(KnowledgeBaseError, match="not in the knowledge index"):
        index.remove("stores.html")
    # a new process (new store object) sees the same index, and nothing of removed sources
    fresh = KnowledgeIndex(SETTINGS, make_store())
    assert {s["name"] for s in fresh.sources()} == {s["name"] for s in index.sources()}
    assert fresh.stats()["sections"] == fresh.store.open().count_documents()


@pytest.mark.slow
def test_changed_encoder_rebuilds_the_index(make_store, library, monkeypatch):
    index = KnowledgeIndex(SETTINGS, make_store())
    index.ingest([library], progress=False)
    monkeypatch.setattr(KnowledgeIndex, "_fingerprint", lambda self: "other-encoder")
    report = KnowledgeIndex(SETTINGS, make_store()).ingest([library], progress=False)
    assert not report.unchanged and len(report.added) == 6
    assert KnowledgeIndex(SETTINGS, make_store()).stats()["sections"] == report.sections == 7


@pytest.mark.slow
def test_shop_docs_sync(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SHOP_DOCS, docs)
    policies = {"shipping", "returns", "refunds", "warranty", "payment"}
    store = MemoryStore(tmp_path / "i.json")
    assert set(build_index(docs, SETTINGS, store).added) == {
        f"{name}{lang}.md" for name in policies for lang in ("", ".zh")
    }
    assert build_index(docs, SETTINGS, store).changed is False


def test_sections_keep_metadata():
    docs = convert_file(SHOP_DOCS / "refunds.md")
    assert {d.meta["title"] for d in docs} == {"Refunds policy"}
    section = next(d for d in docs if d.meta["section"] == "When you get your money back")
    assert section.meta["source"] == "refunds.md" and section.meta["lang"] == "en"
    assert section.meta["updated_at"].endswith("+00:00")
    assert section.content.startswith("Refunds policy: When you get your money back\n")
    assert not section.meta["body"].startswith("Refunds policy")


def test_sentence_splitting_zh_and_en():
    zh = split_sentences("退款会在三个工作日内处理。" * 30, max_chars=60)
    assert all(len(c) <= 60 and c.endswith("。") for c in zh)
    en = split_sentences("Refunds take three days. " * 30, max_chars=80)
    assert all(len(c) <= 80 and c.endswith(".") for c in en)


def test_a_question_only_faq_indexes_each_question_as_its_text(tmp_path):
    path = tmp_path / "standard_questions.jsonl"
    rows = [{"faq_id": "q1", "question": "账户怎么注销"}, {"faq_id": "q2", "question": "密码忘了"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    docs = convert_file(path)
    assert [(d.meta["faq_id"], d.meta["body"]) for d in docs] == [
        ("q1", "账户怎么注销"),
        ("q2", "密码忘了"),
    ]
    assert all(d.meta["kind"] == "faq" and d.meta["lang"] == "zh" for d in docs)


def test_a_faq_row_without_question_is_named(tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text("question,answer\nhi,hello\n,orphan answer\n", "utf-8")
    with pytest.raises(UnsupportedFileError, match="row 2 has no 'question'"):
        convert_file(path)


def test_unsupported_type_is_an_error(tmp_path):
    path = tmp_path / "slides.pptx"
    path.write_bytes(b"x")
    with pytest.raises(UnsupportedFileError, match="unsupported"):
        convert_file(path)


@pytest.mark.slow
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
def test_shop_answers_name_the_right_document(shop_kb, question, source):
    answer = shop_kb.answer(question)
    assert answer.found and answer.source == source
    assert answer.sources[0]["source"] == source


@pytest.mark.slow
def test_one_sentence_of_a_long_section_ranks_it_first(shop_kb):
    # found by the sentence reranker (the relevance gate still finds it too weak to quote)
    best = shop_kb.retrieve("my headphones arrived dead")[0]
    assert (best.meta["source"], best.meta["section"]) == ("warranty.md", "Dead on arrival")


@pytest.mark.slow
def test_a_passage_holding_every_informative_word_passes_a_low_cosine(shop_kb, monkeypatch):
    question = "Will your staff ever ask for my password?"
    answer = shop_kb.answer(question)
    assert answer.found and answer.source == "payment.md"
    monkeypatch.setattr(shop_kb, "settings", replace(shop_kb.settings, support_weight=0.0))
    assert not shop_kb.answer(question).found  # the cosines alone would refuse


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    [
        "what is the capital of France",
        "asdkjh qwe zzz",
        "",
        "   ",
        "Who is the CEO of Demo Shop?",  # names the shop, but no passage is about it
    ],
)
def test_unrelated_questions_are_refused(shop_kb, question):
    assert not shop_kb.answer(question).found


@pytest.fixture(scope="module")
def shop_kb(tmp_path_factory) -> KnowledgeBase:
    store = MemoryStore(tmp_path_factory.mktemp("kb") / "index.json")
    build_index(SHOP_DOCS, SETTINGS, store)
    return KnowledgeBase(SETTINGS, store)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "language", "detections"),
    [
        ("how long do refunds take?", None, 1),
        ("how long do refunds take?", "en", 0),
        ("退款要多久", None, 1),
        ("退款要多久", "zh", 0),
        ("what is the capital of France", None, 1),  # refused: every gate step ran
        ("那退款呢", "zh", 0),
    ],
)
def test_the_language_is_detected_at_most_once_per_question(
    shop_kb, monkeypatch, question, language, detections
):
    calls = []
    detect = knowledge.retrieval.customer_language

    def counting(text: str) -> str | None:
        calls.append(text)
        return detect(text)

    monkeypatch.setattr(knowledge.retrieval, "customer_language", counting)
    shop_kb.answer(question, language=language)
    assert len(calls) == detections


@pytest.mark.slow
def test_the_given_language_chooses_the_passages(shop_kb):
    question = "退款要多久"
    assert shop_kb.answer(question).source == "refunds.zh.md"
    assert shop_kb.answer(question, language="zh").source == "refunds.zh.md"
    # the customer's language wins over the question's: no Chinese passage is searched
    assert shop_kb.passage_language(question, "en") == "en"
    assert all(d.meta["lang"] == "en" for d in shop_kb.retrieve(question, language="en"))


def test_the_store_is_chosen_by_the_settings(tmp_path):
    environ = {"KEFU_KB_STORE": "pgvector", "KEFU_KB_TABLE": "shop_kb"}
    store = store_from_settings(load_settings(tmp_path / "none.yml", environ=environ).knowledge)
    assert isinstance(store, PgvectorStore) and store.table == "shop_kb"
    memory = store_from_settings(KnowledgeSettings(index_path=str(tmp_path / "x.json")))
    assert isinstance(memory, MemoryStore) and memory.index_path == tmp_path / "x.json"
    with pytest.raises(ValueError, match="resolved"):
        store_from_settings(KnowledgeSettings())  # the default path is the services' to resolve
    with pytest.raises(ConfigError, match="KEFU_KB_STORE"):
        load_settings(tmp_path / "none.yml", environ={"KEFU_KB_STORE": "elastic"})
    with pytest.raises(ConfigError, match="KEFU_KB_TABLE"):
        load_settings(tmp_path / "none.yml", environ={**environ, "KEFU_KB_TABLE": "drop table;"})


def test_pgvector_without_connection_string_says_what_to_set(monkeypatch):
    monkeypatch.delenv("PG_CONN_STR", raising=False)
    store = store_from_settings(KnowledgeSettings(store="pgvector"))
    with pytest.raises(KnowledgeBaseError, match="PG_CONN_STR"):
        KnowledgeBase(SETTINGS, store).warm_up()


def test_pgvector_server_down_is_a_clear_error(monkeypatch):
    pytest.importorskip("psycopg")
    monkeypatch.setenv("PG_CONN_STR", "postgresql://kefu@127.0.0.1:9/kefu")
    with pytest.raises(KnowledgeBaseError, match="cannot connect to PostgreSQL"):
        KnowledgeIndex(SETTINGS, store_from_settings(replace(SETTINGS, store="pgvector"))).sources()


@pytest.mark.slow
def test_cli_with_the_pgvector_store(postgres_url, library, monkeypatch, capsys):
    monkeypatch.setenv("PG_CONN_STR", postgres_url)
    monkeypatch.setenv("KEFU_KB_TABLE", "kefu_cli")
    store = ["--store", "pgvector"]
    assert cli([*store, "ingest", str(library)]) == 1
    assert cli([*store, "ask", "do gift cards expire"]) == 0
    assert "gift-cards.md" in capsys.readouterr().out
    assert cli([*store, "stats"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["store"] == "pgvector" and stats["table"] == "kefu_cli" and stats["sources"] == 6
    assert postgres_url not in json.dumps(stats)  # no connection secrets in output
    with pytest.raises(SystemExit):
        cli([*store, "--index", "x.json", "list"])


@pytest.mark.slow
def test_missing_or_corrupt_index_says_how_to_fix_it(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="knowledge build"):
        KnowledgeBase(SETTINGS, MemoryStore(tmp_path / "nope.json")).warm_up()
    corrupt = MemoryStore(tmp_path / "corrupt.json")
    corrupt.index_path.write_text("{not json")
    with pytest.raises(KnowledgeBaseError, match="unreadable"):
        KnowledgeBase(SETTINGS, corrupt).warm_up()
    # `python -m knowledge build` repairs it
    assert len(build_index(SHOP_DOCS, SETTINGS, corrupt).added) == 10  # five policies, en and zh
    assert KnowledgeBase(SETTINGS, corrupt).answer("how long do refunds take?").found


@pytest.mark.slow
def test_cli(tmp_path, library, capsys):
    index = ["--index", str(tmp_path / "cli.json")]
    assert cli([*index, "ingest", str(library)]) == 1  # some files failed
    assert "skipped broken.pdf" in capsys.readouterr().err
    assert cli([*index, "ask", "do gift cards expire"]) == 0
    assert "gift-cards.md" in capsys.readouterr().out
    assert cli([*index, "list"]) == 0 and "faq.csv" in capsys.readouterr().out
    assert cli([*index, "remove", "faq.csv"]) == 0
    assert cli([*index, "stats"]) == 0 and '"sources": 5' in capsys.readouterr().out
    assert cli([*index, "ingest", str(tmp_path / "missing")]) == 2
    assert cli([*index, "remove", "nothing.md"]) == 2
    assert cli(["--index", str(tmp_path / "b.json"), "build"]) == 0


@pytest.mark.slow
def test_cli_build_indexes_the_assistants_documents_into_its_own_index(kefu_home, monkeypatch):
    monkeypatch.setenv("KEFU_ASSISTANT", "shop")
    assert cli(["build"]) == 0
    index = MemoryStore(kefu_home / "knowledge_index.shop.json")
    sources = {Path(s["path"]).parent for s in KnowledgeIndex(SETTINGS, index).sources()}
    assert sources == {SHOP_DOCS.resolve()}
    assert not (kefu_home / "knowledge_index.json").exists()
