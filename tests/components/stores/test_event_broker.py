import asyncio
import json

import pytest
from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

from components.errors import ConfigError
from components.paths import kefu_home
from components.privacy.vault import Vault
from components.stores.event_broker import MaskingEventBroker
from components.stores.tracker_store import main

PHONE, CARD = "13812345678", "4111 1111 1111 1111"


def _broker(tmp_path, **inner) -> EventBroker:
    config = EndpointConfig.from_dict(
        {
            "type": "components.stores.event_broker.MaskingEventBroker",
            "inner": inner or {"type": "file", "path": str(tmp_path / "events.jsonl")},
        }
    )
    return asyncio.run(EventBroker.create(config))


def test_published_events_are_masked(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_VAULT_KEY", "broker-test-key-0123456789")
    broker = _broker(tmp_path)
    assert isinstance(broker, MaskingEventBroker) and broker.is_ready()
    broker.publish(
        {
            "sender_id": "s1",
            "event": "user",
            "text": f"call me on {PHONE}",
            "parse_data": {
                "text": f"call me on {PHONE}",
                "entities": [{"entity": "phone", "value": PHONE}],
            },
            "metadata": {"note": f"card {CARD}"},
        }
    )
    broker.publish({"sender_id": "s1", "event": "slot", "name": "phone", "value": PHONE})
    broker.publish({"sender_id": "s1", "event": "action", "name": "action_listen"})
    raw = (tmp_path / "events.jsonl").read_text()
    assert PHONE not in raw and CARD.replace(" ", "") not in raw.replace(" ", "")
    events = [json.loads(line) for line in raw.splitlines()]
    assert [e["event"] for e in events] == ["user", "slot", "action"]
    token = events[1]["value"]
    assert token.startswith("[PHONE_") and events[0]["text"] == f"call me on {token}"
    vault = Vault("broker-test-key-0123456789", kefu_home() / "vault.db")
    assert vault.reveal(token) == PHONE  # the action server can still call back
    asyncio.run(broker.close())


@pytest.mark.parametrize(
    "inner",
    [{}, {"path": "x"}, {"type": "components.stores.event_broker.MaskingEventBroker"}],
    ids=["missing", "no-type", "itself"],
)
def test_bad_inner_config_is_a_clear_error(tmp_path, inner):
    config = {"type": "components.stores.event_broker.MaskingEventBroker"}
    if inner:
        config["inner"] = inner
    with pytest.raises(ConfigError, match="event_broker.inner"):
        asyncio.run(MaskingEventBroker.from_endpoint_config(EndpointConfig.from_dict(config)))


def test_endpoint_check_covers_the_event_broker(tmp_path, capsys):
    bad = tmp_path / "bad.yml"
    bad.write_text("event_broker:\n  type: components.nope.MaskingEventBroker\n")
    assert main(["--check", str(bad)]) == 1
    assert "drop events" in capsys.readouterr().err
    good = tmp_path / "good.yml"
    good.write_text("event_broker:\n  type: components.stores.event_broker.MaskingEventBroker\n")
    assert main(["--check", str(good)]) == 0
