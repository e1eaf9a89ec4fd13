"""Every assistant: its folders complete, its data valid, it trains, its test stories pass.

Parametrised over :func:`components.assistants.assistant_names`: a new assistant (a new set of
folders) is checked by these tests without a line added here.
"""

import json
import re
import subprocess

import pytest
import yaml

from components.assistants import Assistant, assistant_names, get_assistant, main
from components.text import customer_language
from deployment.commands import ROOT, rasa_cli

ASSISTANTS = assistant_names()


def test_there_is_at_least_the_shop_and_each_assistant_is_complete(capsys):
    assert "shop" in ASSISTANTS
    for name in ASSISTANTS:
        assert Assistant(name).missing() == [], name
    assert main([]) == 0
    assert capsys.readouterr().out.split() == ASSISTANTS


def test_an_unknown_assistant_is_refused_with_the_known_ones(capsys):
    with pytest.raises(ValueError, match="one of the assistants"):
        get_assistant("nosuch")
    with pytest.raises(ValueError, match="KEFU_ASSISTANT"):
        get_assistant(environ={"KEFU_ASSISTANT": "../shop"})
    assert main(["nosuch"]) == 2
    assert "shop" in capsys.readouterr().err


@pytest.mark.parametrize("name", ASSISTANTS)
def test_rasa_data_validate_passes(name):
    assistant = get_assistant(name)
    result = subprocess.run(
        [
            rasa_cli(),
            "data",
            "validate",
            "--domain",
            str(assistant.domain),
            "--data",
            str(assistant.data),
            "--config",
            str(assistant.config),
            "--fail-on-warnings",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _story_files() -> list[tuple[str, str]]:
    return [
        (name, str(path.relative_to(ROOT)))
        for name in ASSISTANTS
        for path in sorted(get_assistant(name).tests.glob("test_stories*.yml"))
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSISTANTS)
def test_every_assistant_trains(trained_models, name):
    assert trained_models(name).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name, stories", _story_files())
def test_conversation_stories_pass(trained_models, tmp_path, name, stories):
    result = subprocess.run(
        [
            rasa_cli(),
            "test",
            "core",
            "-m",
            str(trained_models(name)),
            "--stories",
            stories,
            "--out",
            str(tmp_path),
            "--fail-on-prediction-errors",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    failed = tmp_path / "failed_test_stories.yml"
    details = failed.read_text() if failed.exists() else ""
    assert result.returncode == 0, details + result.stdout[-2000:] + result.stderr[-2000:]
    assert "# None of the test stories failed" in details or not details.strip()


@pytest.mark.slow
def test_rasa_test_nlu_reports_the_components_entities(trained_model, tmp_path):
    """The shop's held-out examples: intents and its order-number entity."""
    held_out = str(get_assistant("shop").tests / "test_nlu.yml")
    result = subprocess.run(
        [rasa_cli(), "test", "nlu", "-m", str(trained_model), "--nlu", held_out,
         "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "TransformerIntentEntityClassifier_report.json").read_text())
    assert report["order_id"]["support"] == 5
    assert report["order_id"]["f1-score"] > 0.5
    intents = json.loads((tmp_path / "intent_report.json").read_text())
    assert intents["accuracy"] > 0.5


ZH = [{"type": "slot", "name": "language", "value": "zh"}]


def _responses() -> list[tuple[str, str, list]]:
    found = []
    for assistant in ASSISTANTS:
        domain = yaml.safe_load(get_assistant(assistant).domain.read_text(encoding="utf-8"))
        found += [(assistant, name, v) for name, v in sorted(domain["responses"].items())]
    return found


@pytest.mark.parametrize(
    "assistant, name, variations", _responses(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_response_has_an_english_and_a_chinese_variation(assistant, name, variations):
    english = [v for v in variations if not v.get("condition")]
    chinese = [v for v in variations if v.get("condition") == ZH]
    assert english and chinese and len(english) + len(chinese) == len(variations), name
    placeholders = {frozenset(re.findall(r"{(\w+)}", v["text"])) for v in variations}
    assert len(placeholders) == 1, f"{name}: the variations fill different slots"
    payloads = {tuple(b["payload"] for b in v.get("buttons") or []) for v in variations}
    assert len(payloads) == 1, f"{name}: the variations' buttons differ"
    for variation in english:
        assert customer_language(variation["text"]) == "en", name
    for variation in chinese:
        assert customer_language(variation["text"]) == "zh", name
        assert not (variation.get("metadata") or {}).get("rephrase"), (
            f"{name}: the bundled LLM cannot rephrase Chinese faithfully"
        )
        for button in variation.get("buttons") or []:
            assert customer_language(button["title"]) == "zh", name
