"""LLM client contract: every backend available here must pass these.

``transformers`` runs the bundled SmolLM2 in-process; ``openai`` talks over real HTTP on loopback
to ``python -m components.llm.serve`` serving the same model (started once per module);
``llamacpp`` runs the GGUF through llama.cpp when the optional extra is installed.
"""

import asyncio
import importlib.util
import time

import pytest

from components.errors import ConfigError, LLMError, LLMTimeoutError
from components.llm import Generation, LLMBackend, LLMClient, create_client
from components.llm.openai_backend import OpenAICompatibleBackend
from tests.llm_server import LLMServer

CHAT = [{"role": "user", "content": "Say hello to the customer."}]
BACKENDS = ["transformers", "openai", "llamacpp"]


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory):
    with LLMServer(tmp_path_factory.mktemp("llm_server")) as server:
        yield server


@pytest.fixture(params=BACKENDS)
def backend(request) -> LLMBackend:
    if request.param == "transformers":
        chosen = create_client({"timeout": 30}).backend
    elif request.param == "llamacpp":
        if importlib.util.find_spec("llama_cpp") is None:
            pytest.skip("llama-cpp-python is not installed (optional: pip install '.[llamacpp]')")
        chosen = create_client({"backend": "llamacpp", "timeout": 30}).backend
    else:  # a fresh client per test: one test's open circuit must not leak into the next
        server = request.getfixturevalue("llm_server")
        chosen = OpenAICompatibleBackend(server.base_url, model="kefu-local", timeout_s=30)
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
def test_batch_of_chats_gives_one_reply_each(backend):
    client = LLMClient(backend, timeout_s=60)
    chats = [CHAT, [{"role": "user", "content": "Thank the customer for waiting."}], CHAT]
    gens = client.generate_batch(chats, max_new_tokens=8)
    assert len(gens) == 3 and all(g.text and g.new_tokens > 0 for g in gens)
    assert gens[0].text == gens[2].text  # same chat, same greedy reply within a batch
    single = client.generate_batch([CHAT], max_new_tokens=8)
    assert single[0].text == client.generate(CHAT, max_new_tokens=8).text
    assert client.generate_batch([], max_new_tokens=8) == []


@pytest.mark.slow
def test_batch_deadline_stops_every_chat(backend):
    client = LLMClient(backend, timeout_s=0.05)
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        client.generate_batch(
            [[{"role": "user", "content": "Write a long story about a shop."}]] * 2,
            max_new_tokens=400,
        )
    assert time.monotonic() - started < 8


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
    with pytest.raises(ConfigError, match="quantize"):
        create_client({"quantize": "int3"})


class _Recording(LLMBackend):
    name = "recording"

    def __init__(self):
        self.budgets = []

    def generate(self, messages, *, deadline=None, **kw):
        self.budgets.append(deadline - time.monotonic())
        return Generation(text="ok", backend=self.name, latency_s=0.0)


def test_timeout_is_per_call_so_callers_share_one_client():
    backend = _Recording()
    client = LLMClient(backend, timeout_s=2.0)
    client.generate(CHAT)  # the configured default
    client.generate(CHAT, timeout_s=0.5)  # e.g. a few-shot intent classifier
    asyncio.run(client.agenerate(CHAT, timeout_s=7.0))
    client.generate_batch([CHAT, CHAT], timeout_s=4.0)
    expected = [2.0, 0.5, 7.0, 4.0, 4.0]
    assert [round(b, 1) for b in backend.budgets] == expected
    assert client.timeout_s == 2.0  # a call's timeout never changes the client's


def test_the_deadline_counts_time_spent_queued_behind_other_calls():
    """Under load every caller still hears back by its own deadline (issue: 53 calls > 2.2 s)."""
    from tests.scripted_llm import ScriptedBackend

    client = LLMClient(ScriptedBackend("ok", delay=0.3), timeout_s=0.5)

    async def one() -> tuple[float, str]:
        started = time.monotonic()
        try:
            await client.agenerate(CHAT)
            outcome = "ok"
        except LLMTimeoutError:
            outcome = "timeout"
        return time.monotonic() - started, outcome

    async def many() -> list[tuple[float, str]]:
        return await asyncio.gather(*(one() for _ in range(6)))

    results = asyncio.run(many())
    assert max(elapsed for elapsed, _ in results) < 0.5 + 0.1  # deadline + result hand-over
    assert [o for _, o in results].count("ok") >= 1  # the first call is served normally
    assert "timeout" in [o for _, o in results]  # those queued past their deadline are not


def test_a_call_that_cannot_fit_behind_the_queue_is_refused_at_once():
    """Under load the NLG gets 'busy' immediately and sends its template, instead of waiting."""
    from components.errors import LLMBusyError
    from tests.scripted_llm import ScriptedBackend

    client = LLMClient(ScriptedBackend("ok", delay=0.3), timeout_s=0.5)

    async def scenario() -> list[tuple[float, str]]:
        await client.agenerate(CHAT)  # one measured call: ~0.3 s each

        async def one() -> tuple[float, str]:
            started = time.monotonic()
            try:
                await client.agenerate(CHAT)
                return time.monotonic() - started, "ok"
            except LLMBusyError:
                return time.monotonic() - started, "busy"

        return await asyncio.gather(*(one() for _ in range(4)))

    results = asyncio.run(scenario())
    assert [o for _, o in results] == ["ok", "busy", "busy", "busy"]
    assert max(elapsed for elapsed, o in results if o == "busy") < 0.05


def test_a_call_cancelled_in_the_queue_is_not_counted_forever():
    """A call whose deadline passes while it waits behind a long one must leave the count."""
    from tests.scripted_llm import ScriptedBackend

    backend = ScriptedBackend("ok", delay=0.1)
    client = LLMClient(backend, timeout_s=3.0)

    async def scenario() -> None:
        await client.agenerate(CHAT)  # measured: ~0.1 s
        backend.delay = 1.0
        long_call = asyncio.ensure_future(client.agenerate(CHAT, timeout_s=3.0))
        await asyncio.sleep(0.05)
        with pytest.raises(LLMTimeoutError):
            await client.agenerate(CHAT, timeout_s=0.5)  # admitted (2 x 0.1 s), then times out
        await long_call

    asyncio.run(scenario())
    assert client._waiting == 0
    backend.delay = 0.1
    assert asyncio.run(client.agenerate(CHAT)).text == "ok"  # not refused as busy for good
