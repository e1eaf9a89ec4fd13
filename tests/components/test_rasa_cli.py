"""Rasa's command line as Kefu runs it: no third-party deprecations, no false Rasa warnings."""

from __future__ import annotations

import os
import subprocess
import sys

from components.assistants import get_assistant
from components.paths import PROJECT_ROOT
from components.rasa_cli import responses_used_outside_stories


def test_responses_sent_by_actions_or_asked_by_forms_are_found():
    names = responses_used_outside_stories()
    assert {"utter_handoff", "utter_contact_locked", "utter_ask_order_id"} <= set(names)
    assert "utter_greet" not in names  # a rule uses it: Rasa's check still applies to it


def test_data_validation_prints_no_false_or_third_party_warnings():
    shop = get_assistant("shop")
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    result = subprocess.run(
        [sys.executable, "-m", "components.rasa_cli", "data", "validate", "--domain",
         str(shop.domain), "--data", str(shop.data), "--config", str(shop.config)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "is not used in any story or rule" not in output
    assert "DeprecationWarning" not in output and "pkg_resources is deprecated" not in output
