"""The socket.io, Slack and Telegram adapters' configuration and socket.io's session ids."""

from __future__ import annotations

import pytest

from components.channels.options import RestOptions
from components.channels.sessions import SessionSigner
from components.channels.slack import GuardedSlackInput
from components.channels.socketio import GuardedSocketIOInput
from components.channels.telegram import GuardedTelegramInput
from components.channels.validation import Rejected, parse_socket_message
from components.errors import ConfigError


def test_session_ids_are_signed():
    signer = SessionSigner("secret-a")
    session = signer.issue()
    assert signer.valid(session) and session != signer.issue()
    assert not SessionSigner("secret-b").valid(session)
    core, tag = session.split(".")
    assert not signer.valid(f"{core}.{tag[:-1]}0" if tag[-1] != "0" else f"{core}.{tag[:-1]}1")
    for forged in (None, 5, "", "a" * 57, core, session + "x"):
        assert not signer.valid(forged)


def test_socketio_credentials_split_between_rasa_and_kefu(monkeypatch):
    monkeypatch.setenv("KEFU_SESSION_SECRET", "s")
    channel = GuardedSocketIOInput.from_credentials(
        {"user_message_evt": "u", "session_persistence": True, "max_message_chars": 10}
    )
    assert channel.user_message_evt == "u" and channel.options.max_message_chars == 10
    assert channel.bot_message_evt == "bot_uttered" and channel.web_page is True
    with pytest.raises(ConfigError, match="colour"):
        GuardedSocketIOInput.from_credentials({"colour": "red"})
    with pytest.raises(ConfigError, match="web_page"):
        GuardedSocketIOInput.from_credentials({"web_page": "yes"})


def test_socket_messages_are_validated():
    options = RestOptions(max_message_chars=5)
    assert parse_socket_message({"message": "hi", "metadata": '{"a": 1}'}, options).metadata == {
        "a": 1
    }
    for data, code in [
        ("x", "invalid_event"),
        ({"message": 1}, "invalid_message"),
        ({"message": "toolong"}, "message_too_long"),
        ({"message": "hi", "session_id": 3}, "invalid_session"),
        ({"message": "hi", "metadata": "[1]"}, "invalid_metadata"),
    ]:
        with pytest.raises(Rejected) as refused:
            parse_socket_message(data, options)
        assert refused.value.code == code


def test_slack_needs_its_token_and_signing_secret():
    with pytest.raises(ConfigError, match="slack_signing_secret"):
        GuardedSlackInput.from_credentials({"slack_token": "xoxb-1"})
    with pytest.raises(ConfigError, match="api_url"):
        GuardedSlackInput.from_credentials(
            {"slack_token": "x", "slack_signing_secret": "s", "api_url": "ftp://x"}
        )
    channel = GuardedSlackInput.from_credentials(
        {"slack_token": "x", "slack_signing_secret": "s", "use_threads": True, "burst": 3}
    )
    assert channel.use_threads and channel.options.burst == 3
    assert channel.retry_num_header == "x-slack-retry-num"


def test_telegram_needs_a_token_and_a_secret_token():
    good = {"access_token": "1:abc", "secret_token": "s3cr3t_-"}
    assert GuardedTelegramInput.from_credentials(good).secret_token == "s3cr3t_-"
    for bad in (
        {**good, "access_token": None},
        {**good, "secret_token": "has space"},
        {"access_token": "1:a"},
    ):
        with pytest.raises(ConfigError) as error:
            GuardedTelegramInput.from_credentials(bad)
        assert "s3cr3t" not in str(error.value)  # secrets are never echoed
    with pytest.raises(ConfigError, match="rate_per_minute"):
        GuardedTelegramInput.from_credentials({**good, "rate_per_minute": -1})


@pytest.mark.parametrize("channel", [GuardedSocketIOInput, GuardedSlackInput, GuardedTelegramInput])
def test_a_block_that_is_not_a_mapping_is_refused_without_echoing_it(channel):
    with pytest.raises(ConfigError) as error:
        channel.from_credentials(["xoxb-secret-token"])
    assert "xoxb-secret-token" not in str(error.value)


def test_non_ascii_session_tags_are_invalid_not_an_error():
    signer = SessionSigner("secret")
    core = signer.issue().split(".")[0]
    assert not signer.valid(f"{core}." + "é" * 24)


def test_a_misspelt_key_does_not_echo_its_value():
    with pytest.raises(ConfigError) as error:
        GuardedSlackInput.from_credentials(
            {"slack_token": "x", "slack_signing_secret": "s", "slack_signing_secert": "hunter2"}
        )
    assert "hunter2" not in str(error.value) and "slack_signing_secert" in str(error.value)


@pytest.mark.parametrize("sender", ["slack:U0ABC", "telegram:123456789"])
def test_platform_conversations_cannot_be_named_over_rest_or_socketio(sender):
    from components.channels.validation import parse_request

    with pytest.raises(Rejected) as refused:
        parse_request(f'{{"sender": "{sender}", "message": "hi"}}'.encode(), RestOptions())
    assert refused.value.code == "invalid_sender"
    with pytest.raises(Rejected):
        parse_socket_message({"message": "hi", "session_id": sender}, RestOptions())


def test_socket_metadata_key_is_honoured():
    parsed = parse_socket_message(
        {"message": "hi", "customData": {"a": 1}}, RestOptions(), "customData"
    )
    assert parsed.metadata == {"a": 1}


@pytest.mark.parametrize(
    ("channel", "block", "named"),
    [
        (GuardedSocketIOInput, {}, ["web_page", "session_persistence", "burst"]),
        (GuardedSlackInput, {"slack_token": "x", "slack_signing_secret": "s"}, ["api_url"]),
        (
            GuardedTelegramInput,
            {"access_token": "1:a", "secret_token": "s3cr3t", "webhook_url": "https://x"},
            ["secret_token", "api_url", "webhook_url"],
        ),
    ],
)
def test_a_misspelt_key_names_the_channel_and_all_its_keys_not_the_value(channel, block, named):
    with pytest.raises(ConfigError) as error:
        channel.from_credentials({**block, "slack_tokn": "xoxb-secret"})
    message = str(error.value)
    assert "slack_tokn" in message and "xoxb-secret" not in message
    assert "channels.rest" not in message
    assert all(key in message for key in named), message
