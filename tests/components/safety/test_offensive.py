"""The learned offensive-content classifier: the committed model and the engine.

Its trainer is tested in ``tests/training/safety``.
"""

from __future__ import annotations

import shutil

import pytest

from components.errors import ConfigError, ModelNotFoundError
from components.safety.engine import MASK, OFFENSIVE, GuardEngine
from components.safety.offensive import (
    CHECKSUM_FILE,
    MODEL_FILE,
    OffensiveClassifier,
    default_classifier,
)

OFFENSIVE_ZH = ["你们客服是不是脑子有问题，垃圾服务", "黑人都是懒鬼，滚出去"]
CLEAN_ZH = ["我的快递到哪了", "花呗怎么还款", "这个杯子可以退货吗"]


@pytest.fixture(scope="module")
def shipped() -> OffensiveClassifier:
    return default_classifier()


def test_only_chinese_text_is_scored(shipped):
    scores = shipped.scores(["you are useless", "", "退货", "hello 你好"])
    assert scores[0] is None and scores[1] is None
    assert scores[2] is not None and scores[3] is not None


def test_committed_model_separates_offensive_from_clean(shipped):
    assert all(s >= shipped.threshold for s in shipped.scores(OFFENSIVE_ZH))
    assert all(s < shipped.threshold for s in shipped.scores(CLEAN_ZH))
    assert MODEL_FILE.stat().st_size < 25_000_000


def test_missing_or_altered_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no offensive classifier"):
        OffensiveClassifier.load(tmp_path / "none.npz")
    copy = tmp_path / "m.npz"
    shutil.copy(MODEL_FILE, copy)
    with copy.open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelNotFoundError, match="does not match"):
        OffensiveClassifier.load(copy, CHECKSUM_FILE)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ModelNotFoundError, match="not an offensive classifier"):
        OffensiveClassifier.load(tmp_path / "junk.npz")


@pytest.mark.parametrize("action", ["flag", "mask", "block"])
def test_engine_adds_an_offensive_hit_with_its_own_action(shipped, action):
    engine = GuardEngine.from_files().with_classifier(shipped, offensive_action=action)
    text = OFFENSIVE_ZH[1]
    result = engine.scan(text)
    assert OFFENSIVE in result.categories and result.offensive_score >= shipped.threshold
    hit = next(h for h in result.hits if h.category == OFFENSIVE)
    assert (hit.start, hit.end, hit.action) == (0, len(text), action)
    assert result.action == action or result.action == "block"
    assert engine.mask(text, result) == (text if action == "flag" else MASK)
    assert engine.scan_many([text, CLEAN_ZH[0]])[0].as_dict() == result.as_dict()
    clean = engine.scan(CLEAN_ZH[0])
    assert clean.hits == [] and clean.offensive_score < shipped.threshold


def test_lexicon_hits_keep_their_action_and_the_lexicon_engine_is_unchanged(shipped):
    lexicons = GuardEngine.from_files()
    engine = lexicons.with_classifier(shipped, offensive_action="flag")
    result = engine.scan("你这个傻逼")
    assert {h.action for h in result.hits if h.category == "insult"} == {"mask"}
    assert lexicons.scan(OFFENSIVE_ZH[1]).offensive_score is None  # shared, not modified
    assert lexicons.with_classifier(None) is lexicons


def test_threshold_and_action_are_checked(shipped):
    engine = GuardEngine.from_files()
    with pytest.raises(ConfigError, match="offensive_action"):
        engine.with_classifier(shipped, offensive_action="delete")
    with pytest.raises(ConfigError, match="offensive_threshold"):
        engine.with_classifier(shipped, offensive_threshold=2.0)
    strict = engine.with_classifier(shipped, offensive_threshold=1.0)
    assert strict.scan(OFFENSIVE_ZH[0]).hits == [] or all(
        h.category != OFFENSIVE for h in strict.scan(OFFENSIVE_ZH[0]).hits
    )
