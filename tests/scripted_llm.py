"""A scripted LLM backend for tests of the checks around an LLM (adversarial or slow replies).

Real-model behaviour is covered by the contract tests in tests/components/test_llm_client.py;
this backend exists to feed the NLG and knowledge checks outputs a real model rarely produces.
"""

from __future__ import annotations

import time

from components.llm import Generation, LLMBackend


class ScriptedBackend(LLMBackend):
    """Returns a fixed reply, optionally after ``delay`` seconds, honouring the deadline."""

    name = "scripted"

    def __init__(self, reply: str, delay: float = 0.0) -> None:
        self.reply, self.delay, self.calls = reply, delay, 0

    def generate(self, messages, *, deadline=None, **kw):
        self.calls += 1
        end = time.monotonic() + self.delay
        while time.monotonic() < end:
            if deadline and time.monotonic() > deadline:
                return Generation("", self.name, self.delay, 0, "deadline")
            time.sleep(0.01)
        return Generation(self.reply, self.name, self.delay, 5)
