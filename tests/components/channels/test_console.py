"""The terminal chat's own logic (the e2e tests drive it against a real `rasa run`)."""

import io
import json

from components.channels.console import Console, choose, parse_replies

OFFER = [
    {"title": "好的，转人工", "payload": "/request_human"},
    {"title": "不用了，谢谢", "payload": "/deny"},
]


def test_replies_are_read_from_a_list_or_json_lines():
    body = json.dumps([{"recipient_id": "a", "text": "hi"}, {"text": "?", "buttons": OFFER}])
    replies = parse_replies(body)
    assert [r.text for r in replies] == ["hi", "?"] and replies[1].buttons == OFFER
    lines = "\n".join(json.dumps({"text": t}) for t in ("one", "two"))
    assert [r.text for r in parse_replies(lines)] == ["one", "two"]
    assert parse_replies("") == [] and parse_replies("[]") == []


def test_a_number_picks_a_button_and_anything_else_is_sent_as_typed():
    assert choose("1", OFFER) == "/request_human"
    assert choose(" 2 ", OFFER) == "/deny"
    assert choose("3", OFFER) == "3"  # not a listed button
    assert choose("我的订单KF100871到哪了", OFFER) == "我的订单KF100871到哪了"
    assert choose("1", []) == "1"  # no buttons shown: a number is a message


def test_an_unreachable_server_keeps_the_message():
    out = io.StringIO()
    console = Console("http://127.0.0.1:9", out=out, timeout=2)  # nothing listens on port 9
    code = console.run(io.StringIO("hello\n\n/quit\n"), prompt=False)
    assert code == 0
    assert out.getvalue().count("your message was not sent") == 2  # sent again on Enter
