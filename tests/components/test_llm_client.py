"""LLM client contract: every backend available here must pass these."""

import asyncio
import time

import pytest

from components.errors import ConfigError, LLMError, LLMTimeoutError
from components.llm import Generation, LLMBackend, LLMClient, create_client

CHAT = [{"role": "user", "content": "Say hello to the customer."}]


def available_backends() -> list[LLMBackend]:
    """Real backends that run on this machine (more join as they are implemented)."""
    return [create_client({"timeout": 30}).backend]


@pytest.fixture(scope="module", params=[b.name for b in available_backends()])
def backend(request) -> LLMBackend:
    chosen = next(b for b in available_backends() if b.name == request.param)
    chosen.warm_up()
    return chosen


@pytest.mark.slow
def test_generates_text(backend):
    gen = LLMClient(backend, timeout_s=30).generate(CHAT, max_new_tokens=16)
    assert isinstance(gen, Generation)
    assert gen.text and gen.new_tokens > 0
    assert gen.backend == backend.name


@pytest.mark.slow
def test_greedy_decoding_is_deterministic(backend):
    client = LLMClient(backend, timeout_s=30)
    assert (
        client.generate(CHAT, max_new_tokens=12).text
        == client.generate(CHAT, max_new_tokens=12).text
    )


@pytest.mark.slow
def test_stop_strings_cut_the_text(backend):
    gen = LLMClient(backend, timeout_s=30).generate(
        [{"role": "user", "content": "Count from 1 to 20 separated by commas."}],
        max_new_tokens=60,
        stop=["5"],
    )
    assert "5" not in gen.text
    assert gen.stopped_by in ("stop_string", "eos")


@pytest.mark.slow
def test_deadline_stops_generation(backend):
    client = LLMClient(backend, timeout_s=0.05)
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        client.generate(
            [{"role": "user", "content": "Write a long story about a shop."}], max_new_tokens=400
        )
    assert time.monotonic() - started < 5  # it stopped, it did not run 400 tokens


@pytest.mark.slow
def test_async_generation_does_not_block_the_loop(backend):
    async def run():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        gen = await LLMClient(backend, timeout_s=30).agenerate(CHAT, max_new_tokens=16)
        task.cancel()
        return gen, ticks

    gen, ticks = asyncio.run(run())
    assert gen.text
    assert ticks > 1


class _Broken(LLMBackend):
    name = "broken"

    def generate(self, messages, **kw):
        raise RuntimeError("boom")


def test_backend_errors_become_llm_errors():
    with pytest.raises(LLMError, match="broken backend failed"):
        LLMClient(_Broken()).generate(CHAT)


def test_bad_config_is_reported():
    with pytest.raises(ConfigError, match="backend"):
        create_client({"backend": "gpt-9000"})
    with pytest.raises(ConfigError, match="timeout"):
        LLMClient(_Broken(), timeout_s=0)
