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
