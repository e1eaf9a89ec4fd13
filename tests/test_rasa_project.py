"""The Rasa project itself: data validation and conversation tests with `rasa test core`."""

import json
import re
import subprocess

import pytest
import yaml

from components.text import customer_language
from tests.conftest import ROOT, rasa_cli


def test_rasa_data_validate_passes():
    result = subprocess.run(
        [
            rasa_cli(),
            "data",
            "validate",
            "--domain",
            "rasa_project/domain.yml",
            "--data",
            "training_data",
            "--config",
            "config.yml",
            "--fail-on-warnings",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("stories", ["tests/test_stories.yml", "tests/test_stories_zh.yml"])
def test_conversation_stories_pass(trained_model, tmp_path, stories):
    result = subprocess.run(
        [
            rasa_cli(),
            "test",
            "core",
            "-m",
            str(trained_model),
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
    result = subprocess.run(
        [rasa_cli(), "test", "nlu", "-m", str(trained_model), "--nlu", "tests/test_nlu.yml",
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


def _responses() -> dict:
    domain = yaml.safe_load((ROOT / "rasa_project" / "domain.yml").read_text(encoding="utf-8"))
    return domain["responses"]


@pytest.mark.parametrize("name", sorted(_responses()))
def test_every_response_has_an_english_and_a_chinese_variation(name):
    variations = _responses()[name]
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
