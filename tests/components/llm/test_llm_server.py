"""The OpenAI-compatible server and the openai backend's failure handling, over real HTTP."""

import time

import pytest
import requests

from components.errors import ConfigError, LLMError, LLMUnavailableError
from components.llm import LLMClient
from components.llm.circuit import CircuitBreaker
from components.llm.openai_backend import OpenAICompatibleBackend
from components.llm.serve import RequestError, parse_request
from tests.conftest import ROOT  # noqa: F401 - conftest sets the offline environment
from tests.llm_server import LLMServer

CHAT = [{"role": "user", "content": "Say hello."}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "JSON object"),
        ({}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user", "content": 5}]}, "content"),
        ({"messages": CHAT, "stream": True}, "streaming"),
        ({"messages": CHAT, "max_tokens": 0}, "max_tokens"),
        ({"messages": CHAT, "temperature": 9}, "temperature"),
        ({"messages": CHAT, "stop": [""]}, "stop"),
    ],
)
def test_bad_requests_name_the_field(body, field):
    with pytest.raises(RequestError, match=field):
        parse_request(body)


def test_a_good_request_becomes_generation_arguments():
    args = parse_request({"messages": CHAT, "max_tokens": 8, "stop": "\\n"})
    assert args == {"messages": CHAT, "max_new_tokens": 8, "temperature": 0.0, "stop": ["\\n"]}


def test_breaker_opens_then_lets_one_trial_through():
    now = [0.0]
    breaker = CircuitBreaker(failures=2, reset_s=10, clock=lambda: now[0])
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.0
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.record_failure()
    assert breaker.state == "open"
    now[0] = 20.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed"


def test_a_dead_server_costs_one_failure_then_fails_fast():
    backend = OpenAICompatibleBackend("http://127.0.0.1:9/v1", retries=1, backoff_s=0.01)
    client = LLMClient(backend, timeout_s=2)
    with pytest.raises(LLMError):
        client.generate(CHAT)  # connection refused, retried once
    started = time.monotonic()
    for _ in range(5):
        with pytest.raises(LLMUnavailableError):
            client.generate(CHAT)
    assert time.monotonic() - started < 0.1  # no network attempts while the circuit is open


def test_bad_base_url_is_a_config_error():
    with pytest.raises(ConfigError, match="base_url"):
        OpenAICompatibleBackend("localhost:8008")


@pytest.mark.slow
def test_server_killed_mid_conversation_then_back(tmp_path):
    with LLMServer(tmp_path, api_key="serve-test-key") as server:
        base = server.base_url
        # HTTP edge: auth and OpenAI-shaped errors
        assert requests.get(f"{base}/models", timeout=5).status_code == 401
        headers = {"Authorization": "Bearer serve-test-key"}
        bad = requests.post(
            f"{base}/chat/completions", json={"messages": []}, headers=headers, timeout=5
        )
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
        listed = requests.get(f"{base}/models", headers=headers, timeout=5).json()
        assert listed["data"][0]["id"] == "kefu-local"

        import os

        os.environ["KEFU_TEST_CLIENT_KEY"] = "serve-test-key"
        backend = OpenAICompatibleBackend(
            base, model="kefu-local", api_key_env="KEFU_TEST_CLIENT_KEY", retries=1,
            backoff_s=0.05, breaker_reset_s=1.0,
        )  # fmt: skip
        client = LLMClient(backend, timeout_s=30)
        assert client.generate(CHAT, max_new_tokens=8).text
        server.stop()  # killed mid-conversation
        with pytest.raises(LLMError):
            client.generate(CHAT, max_new_tokens=8)
        with pytest.raises(LLMUnavailableError):
            client.generate(CHAT, max_new_tokens=8)
        server.start()
        time.sleep(1.1)  # the breaker lets a trial call through
        assert client.generate(CHAT, max_new_tokens=8).text
        assert backend.breaker.state == "closed"
