"""Request validation and channel options: every malformed body is a 4xx with a clear message."""

import json

import pytest

from components.channels.options import RestOptions
from components.channels.validation import (
    ChatRequest,
    Rejected,
    check_declared_size,
    parse_request,
)
from components.errors import ConfigError

OPTIONS = RestOptions()


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"", 400, "invalid_json"),
        (b"   \n", 400, "invalid_json"),
        (b"{not json", 400, "invalid_json"),
        (b"\xff\xfe\x00garbage", 400, "invalid_json"),
        (b'{"sender": "a", "message": NaN}', 400, "invalid_json"),
        (b'{"sender": "a", "message": "\\ud800"}', 400, "invalid_json"),  # lone surrogate
        (b"[" * 100_000 + b"]" * 100_000, 413, "body_too_large"),
        (b"[" * 20_000 + b"]" * 20_000, 400, "invalid_json"),  # nesting: RecursionError
        (b'[{"sender": "a", "message": "hi"}]', 400, "invalid_json"),
        (b'"hello"', 400, "invalid_json"),
        (b"42", 400, "invalid_json"),
        (b"null", 400, "invalid_json"),
        (body(message="hi"), 400, "invalid_sender"),
        (body(sender=None, message="hi"), 400, "invalid_sender"),
        (body(sender=42, message="hi"), 400, "invalid_sender"),
        (body(sender=["a"], message="hi"), 400, "invalid_sender"),
        (body(sender="", message="hi"), 400, "invalid_sender"),
        (body(sender="sender_0123456789abcdef", message="hi"), 400, "invalid_sender"),
        (body(sender="x sender_0123456789abcdef", message="hi"), 400, "invalid_sender"),
        (body(sender="   ", message="hi"), 400, "invalid_sender"),
        (body(sender="x" * 129, message="hi"), 400, "invalid_sender"),
        (body(sender="a\nb", message="hi"), 400, "invalid_sender"),
        (body(sender="a"), 400, "invalid_message"),
        (body(sender="a", message=None), 400, "invalid_message"),
        (body(sender="a", message=42), 400, "invalid_message"),
        (body(sender="a", message=True), 400, "invalid_message"),
        (body(sender="a", message={"text": "hi"}), 400, "invalid_message"),
        (body(sender="a", message="x" * 4001), 413, "message_too_long"),
        (body(sender="a", message="好" * 4001), 413, "message_too_long"),
        (body(sender="a", message="hi", metadata="x"), 400, "invalid_metadata"),
        (body(sender="a", message="hi", metadata=[1]), 400, "invalid_metadata"),
        (body(sender="a", message="hi", metadata=3), 400, "invalid_metadata"),
        (body(sender="a", message="hi", input_channel=5), 400, "invalid_input_channel"),
        (body(sender="a", message="hi", input_channel=""), 400, "invalid_input_channel"),
        (body(sender="a", message="x" * 20_000_000), 413, "body_too_large"),
    ],
)
def test_bad_bodies_get_a_4xx_with_a_clear_code(raw, status, code):
    with pytest.raises(Rejected) as caught:
        parse_request(raw, OPTIONS)
    assert (caught.value.status, caught.value.code) == (status, code)
    error = caught.value.body["error"]
    assert error["code"] == code and len(error["message"]) > 20


def test_messages_name_the_limit_and_never_echo_the_request():
    with pytest.raises(Rejected) as caught:
        parse_request(body(sender="a", message="secret " * 600), OPTIONS)
    assert "4000" in caught.value.message and "4200" in caught.value.message
    assert "secret" not in caught.value.message
    with pytest.raises(Rejected) as caught:
        parse_request(body(sender="a", message=13812345678), OPTIONS)
    assert "13812345678" not in caught.value.message and "a number" in caught.value.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (body(sender="u1", message="hi"), ChatRequest("u1", "hi")),
        (body(sender="u1", message=""), ChatRequest("u1", "")),  # Rasa answers "" too
        (body(sender="u1", message="   "), ChatRequest("u1", "   ")),
        (body(sender="u1", message="x" * 4000), ChatRequest("u1", "x" * 4000)),
        (body(sender="u1", message="😀" * 4000), ChatRequest("u1", "😀" * 4000)),  # escaped
        (body(sender="s" * 128, message="hi"), ChatRequest("s" * 128, "hi")),
        (
            body(sender="u1", message="hi", metadata={"page": "/cart"}, input_channel="web"),
            ChatRequest("u1", "hi", {"page": "/cart"}, "web"),
        ),
        (body(sender="u1", message="hi", metadata=None), ChatRequest("u1", "hi")),
        ('{"sender": "张三", "message": "我的订单"}'.encode(), ChatRequest("张三", "我的订单")),
        ('{"sender": "u1", "message": "我的订单"}'.encode("utf-16"), ChatRequest("u1", "我的订单")),
    ],
)
def test_good_bodies_pass(raw, expected):
    assert parse_request(raw, OPTIONS) == expected


def test_limits_come_from_the_options():
    options = RestOptions(max_message_chars=10, max_sender_chars=3)
    assert parse_request(body(sender="abc", message="x" * 10), options).message == "x" * 10
    for fields, code in [
        ({"sender": "abc", "message": "x" * 11}, "message_too_long"),
        ({"sender": "abcd", "message": "x"}, "invalid_sender"),
    ]:
        with pytest.raises(Rejected) as caught:
            parse_request(body(**fields), options)
        assert caught.value.code == code
    assert options.body_limit == 64 * 1024
    assert RestOptions(max_message_chars=10_000).body_limit == 12 * 10_000 + 16 * 1024
    assert RestOptions(max_body_bytes=2048).body_limit == 2048


def test_declared_size_is_checked_before_reading():
    check_declared_size(None, OPTIONS)
    check_declared_size(str(OPTIONS.body_limit), OPTIONS)
    with pytest.raises(Rejected) as caught:
        check_declared_size(str(20 * 1024 * 1024), OPTIONS)
    assert caught.value.status == 413
    with pytest.raises(Rejected) as caught:
        check_declared_size("lots", OPTIONS)
    assert caught.value.status == 400


def test_options_defaults_and_credentials():
    assert RestOptions.from_credentials(None) == RestOptions()
    assert RestOptions.from_credentials({}) == RestOptions()
    defaults = RestOptions()
    assert (defaults.max_message_chars, defaults.max_sender_chars) == (4000, 128)
    assert (defaults.rate_per_minute, defaults.burst) == (30, 10)
    custom = RestOptions.from_credentials({"max_message_chars": 500, "rate_per_minute": 0})
    assert custom.max_message_chars == 500 and custom.rate_per_minute == 0


@pytest.mark.parametrize(
    "credentials",
    [
        {"max_message_char": 10},
        {"max_message_chars": 0},
        {"max_message_chars": "4000"},
        {"max_message_chars": True},
        {"max_sender_chars": -1},
        {"max_body_bytes": 10},
        {"rate_per_minute": -1},
        {"rate_per_minute": "fast"},
        {"burst": 0},
        {"max_tracked_senders": 0},
        {"silence_guard": "yes"},
        {"handoff_on_failure": 1},
        ["max_message_chars"],
    ],
)
def test_bad_options_stop_start_up_naming_the_key(credentials):
    with pytest.raises(ConfigError) as caught:
        RestOptions.from_credentials(credentials)
    assert "channels.rest" in str(caught.value)


def nested(depth: int) -> dict:
    """``{"a": {"a": ... {}}}``: an object ``depth`` levels deep."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_deep_metadata_is_refused_before_it_reaches_rasa():
    from components.channels.validation import MAX_METADATA_DEPTH, parse_socket_message

    deep = body(sender="a", message="hi", metadata=nested(500))
    assert len(deep) < OPTIONS.body_limit  # small enough for every size check
    with pytest.raises(Rejected) as refused:
        parse_request(deep, OPTIONS)
    assert refused.value.status == 400 and refused.value.code == "invalid_metadata"
    assert f"{MAX_METADATA_DEPTH} levels" in refused.value.message
    with pytest.raises(Rejected) as refused:
        parse_socket_message({"message": "hi", "metadata": nested(500)}, OPTIONS)
    assert refused.value.code == "invalid_metadata"
    with pytest.raises(Rejected) as refused:  # the widget's JSON-encoded form, lists too
        parse_socket_message(
            {"message": "hi", "metadata": '{"a": ' + "[" * 40 + "]" * 40 + "}"}, OPTIONS
        )
    assert refused.value.code == "invalid_metadata"
    for depth in (10, MAX_METADATA_DEPTH):
        assert parse_request(body(sender="a", message="hi", metadata=nested(depth)), OPTIONS)
        assert parse_socket_message({"message": "hi", "metadata": nested(depth)}, OPTIONS)


def test_large_metadata_is_refused():
    from components.channels.validation import MAX_METADATA_BYTES

    big = {"note": "x" * MAX_METADATA_BYTES}
    with pytest.raises(Rejected) as refused:
        parse_request(
            body(sender="a", message="hi", metadata=big), RestOptions(max_body_bytes=10**6)
        )
    assert refused.value.status == 413 and refused.value.code == "metadata_too_large"
    assert parse_request(body(sender="a", message="hi", metadata={"note": "x" * 1000}), OPTIONS)


def test_a_deep_metadata_turn_gets_a_400_not_a_lost_turn(server):
    reply = server.say("deep-1", "hi", metadata=nested(500))
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid_metadata"
    assert server.agent.received == []
    assert server.say("deep-2", "hi", metadata=nested(10)).status_code == 200
