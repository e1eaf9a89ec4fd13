"""Transformers backend specifics: the system-message KV cache (prefix caching)."""

import pytest

from components.errors import ConfigError
from components.llm.transformers_backend import TransformersBackend

SYSTEM = {
    "role": "system",
    "content": "You rewrite customer-service replies for Demo Shop. Keep every number and "
    "order id exactly as written. Do not add facts. Reply briefly and politely.",
}
TURNS = ["Rephrase: Your order KF100234 ships on 3 May.", "Rephrase: Refunds take 5 days."]


@pytest.mark.slow
def test_prefix_cache_reuses_the_system_message_without_changing_the_output():
    # fp32: the cache must not change a single greedy token (int8 dynamic quantisation scales
    # activations per call, so chunked prefill is numerically different there)
    plain = TransformersBackend(quantize="none", prefix_cache=0)
    cached = TransformersBackend(quantize="none", prefix_cache=4)
    for turn in [*TURNS, TURNS[0]]:
        chat = [SYSTEM, {"role": "user", "content": turn}]
        expected = plain.generate(chat, max_new_tokens=12)
        got = cached.generate(chat, max_new_tokens=12)
        assert got.text == expected.text
        assert expected.extra["cached_prefix_tokens"] == 0
        assert 0 < got.extra["cached_prefix_tokens"] < got.extra["prompt_tokens"]
    assert cached.prefix_hits == 2  # computed once, reused by the next two calls
    no_system = cached.generate([{"role": "user", "content": TURNS[1]}], max_new_tokens=4)
    assert no_system.extra["cached_prefix_tokens"] == 0


def test_bad_prefix_cache_size_is_reported():
    with pytest.raises(ConfigError, match="prefix_cache"):
        TransformersBackend(prefix_cache=-1)


@pytest.mark.slow
def test_lean_decoder_and_generate_give_the_same_fp32_replies():
    lean = TransformersBackend(quantize="none", prefix_cache=2)
    reference = TransformersBackend(quantize="none", prefix_cache=2, decoder="generate")
    chats = [[SYSTEM, {"role": "user", "content": turn}] for turn in TURNS]
    for chat in [*chats, chats[0]]:
        assert lean.generate(chat, max_new_tokens=12).text == (
            reference.generate(chat, max_new_tokens=12).text
        )
    assert lean.lean and not reference.lean
    assert lean.prefix_hits == reference.prefix_hits == 2  # one system prompt, three calls
    stopped = [b.generate(chats[1], max_new_tokens=30, stop=["days"]) for b in (lean, reference)]
    assert stopped[0].text == stopped[1].text and "days" not in stopped[0].text
    batch = [b.generate_batch(chats, max_new_tokens=8) for b in (lean, reference)]
    assert [g.text for g in batch[0]] == [g.text for g in batch[1]]


def test_unknown_decoder_is_reported():
    with pytest.raises(ConfigError, match="decoder"):
        TransformersBackend(decoder="fast")
