"""The Rasa project itself: data validation and conversation tests with `rasa test core`."""

import json
import subprocess

import pytest

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
def test_conversation_stories_pass(trained_model, tmp_path):
    result = subprocess.run(
        [
            rasa_cli(),
            "test",
            "core",
            "-m",
            str(trained_model),
            "--stories",
            "tests/test_stories.yml",
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
