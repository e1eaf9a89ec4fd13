from pathlib import Path

import pytest

from components.errors import ConfigError
from components.safety.engine import GuardEngine, default_engine
from components.safety.lexicon import LexiconEntry, load_lexicon
from components.safety.normalize import normalize


@pytest.fixture(scope="module")
def engine() -> GuardEngine:
    return default_engine()


@pytest.mark.parametrize(
    "text",
    [
        "fuck you",
        "FUCK you",
        "F*U*C*K you",
        "f.u.c.k",
        "ｆｕｃｋ",  # full width
        "f\u200buck",  # zero-width space
        "fuuuuck",  # repeats
        "this shit is fine",  # a repeated letter across a space
        "$hit happens",  # leetspeak
        "你是傻逼",
        "你是傻 逼",
        "你是傻*逼吗",
        "𝐟𝐮𝐜𝐤 you",  # mathematical bold
        "🅕🅤🅒🅚",  # negative circled: NFKC leaves these alone
        "ⓕⓤⓒⓚ",
        "ꜰᴜᴄᴋ",  # small capitals
        "fück",  # accents
        "сunt",  # Cyrillic с
        "b!tch",
        "你是傻傻傻逼",  # a Chinese character repeated three times
        "操你媽",  # traditional
        "做愛",
        "ni shi sha bi",  # full pinyin
        "NI SHI SHABI",
        "法\u200b轮\u200b功",
    ],
)
def test_evasions_are_caught(engine, text):
    assert engine.scan(text).hits, text


@pytest.mark.parametrize(
    "text",
    [
        "hello, where is my order KF100234?",
        "I take a class, hit me with the details",  # 'shit' across a word boundary
        "skill yourself up with our tutorials",
        "Let's hit it",
        "what's hit rate of he's hit list",
        "a sh it b",
        "the price is 1,299 CNY",
        "我想查一下订单",
        "",
        "I ordered my card but it still isn't here",  # "but" is not "butt"
        "as soon as possible",  # "as" is not "ass"
        "see you tomorrow",  # not the pinyin of 色诱
        "播放妈妈的歌",  # 妈妈的 (mum's) is not 妈的
        "成人票多少钱",  # allow-listed
        "我想买一条限量版的裙子",
    ],
)
def test_clean_text_is_not_flagged(engine, text):
    assert engine.scan(text).hits == []


def test_offsets_point_into_the_original_text(engine):
    text = "oh F*U*C*K, my order is late"
    hit = engine.scan(text).hits[0]
    assert text[hit.start : hit.end] == "F*U*C*K"
    assert engine.mask(text) == "oh ***, my order is late"


def test_mask_keeps_the_rest_and_is_idempotent(engine):
    text = "你是傻逼吗？ order KF100234"
    masked = engine.mask(text)
    assert masked == "你是***吗？ order KF100234"
    assert engine.mask(masked) == masked


def test_actions_and_result_summary(engine):
    result = engine.scan("I will kill you, idiot")
    assert result.action == "block"
    assert result.blocked
    summary = result.as_dict()
    assert summary["categories"] == ["insult", "threat"]
    assert all("term" not in hit for hit in summary["hits"])  # no raw words in parse data


def test_flag_only_hits_are_not_masked(engine):
    text = "you idiot"
    assert engine.scan(text).action == "flag"
    assert engine.mask(text) == text


def test_allow_list_suppresses_only_inside_allowed_words():
    engine = GuardEngine([LexiconEntry("cunt", "insult", 3, "mask")], allow=["Scunthorpe"])
    assert engine.scan("I live in Scunthorpe").hits == []
    hits = engine.scan("I live in Scunthorpe, you cunt").hits
    assert [(h.start, h.end) for h in hits] == [(26, 30)]


def test_contained_stronger_hit_is_kept(engine):
    text = "法轮功好"
    result = engine.scan(text)
    assert result.action == "mask"
    assert engine.mask(text) == "***好"


def test_category_actions_override_the_lexicon():
    entries = [LexiconEntry("refund scam", "fraud", 2, "flag")]
    engine = GuardEngine(entries, category_actions={"fraud": "block"})
    assert engine.scan("this is a refund scam").blocked
    with pytest.raises(ConfigError, match="category_actions.fraud"):
        GuardEngine(entries, category_actions={"fraud": "nuke"})


def test_pinyin_can_be_switched_off():
    entries = [LexiconEntry("傻逼", "insult", 3, "mask")]
    assert GuardEngine(entries).scan("sha bi").hits
    assert not GuardEngine(entries, pinyin=False).scan("sha bi").hits


def test_scan_many_matches_scan(engine):
    texts = ["fuck", "", "你是傻逼", "clean text", "a s s h o l e!", "法輪功", "\uffffshit"]
    assert [r.hits for r in engine.scan_many(texts)] == [engine.scan(t).hits for t in texts]


def test_expanding_characters_keep_offsets():
    engine = GuardEngine([LexiconEntry("fish", "test", 1, "mask")])
    text = "㈱ ﬁsh ok"  # both fold to several characters
    hit = engine.scan(text).hits[0]
    assert text[hit.start : hit.end] == "ﬁsh"
    assert engine.mask(text) == "㈱ *** ok"


def test_shipped_lexicons_are_curated(engine):
    assert len(engine) > 10_000  # zh + en curated lists, with variants
    assert not engine.scan("政府网络淘宝兼职成人处女座").hits  # everyday words are not in it


def test_normalize_maps_every_char_back():
    norm, offsets = normalize("Ａ-B\u200bc")
    assert norm == "abc"
    assert offsets == [0, 2, 4]


def test_bad_lexicon_lines_name_the_line(tmp_path: Path):
    path = tmp_path / "lex.tsv"
    path.write_text("ok\tinsult\t1\tmask\nbad\tinsult\tx\tmask\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="lex.tsv:2"):
        load_lexicon(path)
    path.write_text("bad\tinsult\t1\tnuke\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="action"):
        load_lexicon(path)
    with pytest.raises(ConfigError):
        load_lexicon(tmp_path / "missing.tsv")
