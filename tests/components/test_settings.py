"""The kefu: settings block: defaults, validation that names the key, overrides."""

from __future__ import annotations

import pytest

from components.assistants import Assistant
from components.errors import ConfigError
from components.paths import PROJECT_ROOT
from components.settings import GuardSettings, KnowledgeSettings, expand_variables, load_settings


def write(tmp_path, text: str):
    path = tmp_path / "endpoints.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_endpoints_file_is_valid():
    settings = load_settings("endpoints.yml", environ={})
    assert settings.guard.is_default
    assert settings.knowledge.store == "memory" and settings.knowledge.llm_config is None
    # the shipped file only shows examples: every knowledge default is the dataclass's
    assert settings.knowledge == KnowledgeSettings()


def test_missing_file_or_block_gives_the_defaults(tmp_path):
    assert load_settings(tmp_path / "none.yml", environ={}).guard == GuardSettings()
    path = write(tmp_path, "action_endpoint:\n  url: http://x\n")
    assert load_settings(path, environ={}).knowledge.top_k == 10


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ("kefu:\n  gaurd: {}\n", "kefu.gaurd"),
        ("kefu:\n  knowledge:\n    top_k: many\n", "kefu.knowledge.top_k"),
        ("kefu:\n  knowledge:\n    top_k: 0\n", "kefu.knowledge.top_k"),
        ("kefu:\n  knowledge:\n    min_relevance: -1\n", "kefu.knowledge.min_relevance"),
        ("kefu:\n  knowledge:\n    sentence_share: 2\n", "kefu.knowledge.sentence_share"),
        ("kefu:\n  knowledge:\n    zh_dense_share: 1.5\n", "kefu.knowledge.zh_dense_share"),
        ("kefu:\n  knowledge:\n    rerank_weight: 2\n", "kefu.knowledge.rerank_weight"),
        ("kefu:\n  knowledge:\n    support_weight: -1\n", "kefu.knowledge.support_weight"),
        ("kefu:\n  knowledge:\n    gate_top_k: 0\n", "kefu.knowledge.gate_top_k"),
        ("kefu:\n  knowledge:\n    table: drop table;\n", "kefu.knowledge.table"),
        ("kefu:\n  knowledge:\n    search: fast\n", "kefu.knowledge.search"),
        (
            "kefu:\n  knowledge:\n    cross_encoder: /no/such/model\n",
            "kefu.knowledge.cross_encoder",
        ),
        ("kefu:\n  knowledge:\n    store: elastic\n", "kefu.knowledge.store"),
        ("kefu:\n  knowledge:\n    topk: 3\n", "kefu.knowledge.topk"),
        ("kefu:\n  guard:\n    offensive_action: delete\n", "kefu.guard.offensive_action"),
        ("kefu:\n  guard:\n    offensive_threshold: 1.5\n", "kefu.guard.offensive_threshold"),
        ("kefu:\n  guard:\n    offensive_classifier: maybe\n", "kefu.guard.offensive_classifier"),
        ("kefu:\n  privacy:\n    learned_recogniser: 1\n", "kefu.privacy.learned_recogniser"),
        ("kefu:\n  knowledge:\n    llm: {backend: gpt}\n", "kefu.knowledge.llm.backend"),
        ("kefu:\n  guard:\n    lexicons: words.tsv\n", "kefu.guard.lexicons"),
        ("kefu:\n  guard:\n    lexicons: [missing.tsv]\n", "kefu.guard.lexicons"),
        ("kefu:\n  guard:\n    pinyin: maybe\n", "kefu.guard.pinyin"),
        ("kefu:\n  guard:\n    category_actions: {insult: hide}\n", "kefu.guard.category_actions"),
        ("kefu: [1, 2]\n", "kefu"),
        ("kefu:\n  knowledge: 3\n", "kefu.knowledge"),
    ],
)
def test_a_bad_value_names_its_key(tmp_path, block, key):
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, block), environ={})
    assert f"'{key}" in str(error.value)
    assert error.value.hint  # says what is expected


def test_deployment_overrides_win_and_errors_name_the_variable(tmp_path):
    path = write(tmp_path, "kefu:\n  knowledge:\n    store: memory\n")
    settings = load_settings(path, environ={"KEFU_KB_STORE": "pgvector", "KEFU_KB_TABLE": "kb"})
    assert settings.knowledge.store == "pgvector" and settings.knowledge.table == "kb"
    with pytest.raises(ConfigError, match="KEFU_KB_STORE"):
        load_settings(path, environ={"KEFU_KB_STORE": "elastic"})


def test_variables_are_expanded(tmp_path):
    path = write(
        tmp_path,
        "kefu:\n  knowledge:\n    llm:\n      backend: openai\n"
        "      base_url: ${LLM_URL}\n      model: ${LLM_MODEL}\n",
    )
    env = {"LLM_URL": "http://127.0.0.1:8008/v1", "LLM_MODEL": "kefu-local"}
    llm = load_settings(path, environ=env).knowledge.llm_config
    assert llm == {
        "timeout": 3.0,
        "backend": "openai",
        "base_url": "http://127.0.0.1:8008/v1",
        "model": "kefu-local",
    }
    assert expand_variables(["a${X}b", {"k": "${X}"}], {"X": "1"}) == ["a1b", {"k": "1"}]
    with pytest.raises(ConfigError, match="LLM_URL"):  # unset: Rasa refuses the file too
        load_settings(path, environ={"LLM_MODEL": "kefu-local"})


def test_knowledge_paths_default_to_the_assistants_own(kefu_home, monkeypatch):
    shop = KnowledgeSettings().resolved(Assistant("shop"))
    assert shop.docs == str(PROJECT_ROOT / "knowledge" / "docs" / "shop")
    assert shop.index_path == str(kefu_home / "knowledge_index.shop.json")
    other = KnowledgeSettings(top_k=5).resolved(Assistant("bank"))
    assert other.docs == str(PROJECT_ROOT / "knowledge" / "docs" / "bank")
    assert other.index_path == str(kefu_home / "knowledge_index.bank.json")  # never shared
    assert other.top_k == 5
    named = KnowledgeSettings(docs="faq", index_path="/srv/kb.json")
    assert named.resolved(Assistant("bank")) == named
    monkeypatch.setenv("KEFU_ASSISTANT", "shop")  # default: the process's assistant
    assert KnowledgeSettings().resolved() == shop
    monkeypatch.setenv("KEFU_ASSISTANT", "nosuch")
    with pytest.raises(ConfigError, match="KEFU_ASSISTANT"):
        KnowledgeSettings().resolved()


def test_yaml_off_means_no_llm(tmp_path):
    path = write(tmp_path, "kefu:\n  knowledge:\n    llm: {backend: off}\n")
    assert load_settings(path, environ={}).knowledge.llm_config is None


def test_lexicon_paths_are_relative_to_the_settings_file(tmp_path):
    (tmp_path / "shop.tsv").write_text("refund scam\tfraud\t2\tflag\n", encoding="utf-8")
    path = write(tmp_path, "kefu:\n  guard:\n    lexicons: [shop.tsv]\n")
    guard = load_settings(path, environ={}).guard
    assert guard.lexicons == (str(tmp_path / "shop.tsv"),) and not guard.is_default


def test_a_broken_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="valid YAML"):
        load_settings(write(tmp_path, "kefu: [\n"), environ={})


def test_rasa_reads_the_action_server_url_and_secret_from_the_environment(monkeypatch):
    """One source of truth: the URL and the shared secret come from the environment."""
    from rasa.core.utils import read_endpoints_from_path

    monkeypatch.setenv("KEFU_ACTIONS_URL", "http://127.0.0.1:5155/webhook")
    monkeypatch.setenv("KEFU_ACTION_SECRET", "secret-from-the-environment-42")
    action = read_endpoints_from_path("endpoints.yml").action
    assert action.url == "http://127.0.0.1:5155/webhook"
    assert action.headers == {"X-Kefu-Action-Secret": "secret-from-the-environment-42"}


def test_settings_load_without_rasas_variables(monkeypatch):
    """The action server needs only the kefu: block; Rasa's own ${...} may be unset there."""
    import rasa.shared.utils.io  # noqa: F401  (registers Rasa's resolver on every YAML loader)

    monkeypatch.delenv("KEFU_ACTIONS_URL", raising=False)
    monkeypatch.delenv("KEFU_ACTION_SECRET", raising=False)
    assert load_settings("endpoints.yml").knowledge.store == "memory"
