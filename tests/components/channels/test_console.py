"""The terminal chat's own logic (the e2e tests drive it against a real `rasa run`)."""

import io
import json
import re

from components.channels.console import (
    MESSAGES,
    Console,
    choose,
    locale_language,
    parse_replies,
)
from components.text import has_cjk

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


class Scripted(Console):
    """A console whose server answers from a script (one list of replies per message sent)."""

    def __init__(self, script, **kwargs):
        super().__init__("http://127.0.0.1:9", out=io.StringIO(), **kwargs)
        self.script = list(script)
        self.sent = []

    def send(self, message):
        self.sent.append(message)
        return parse_replies(json.dumps(self.script.pop(0)))


def test_the_console_speaks_the_language_of_the_conversation():
    console = Scripted(
        [
            [{"text": "需要为您转人工客服吗？", "buttons": OFFER}],
            [{"text": "Would you like a human agent?", "buttons": OFFER}],
            [{"text": "好的，正在为您转接。"}],
        ],
        language="en",
    )
    code = console.run(io.StringIO("我要投诉\nhelp please\n1\n/restart\n/quit\n"), prompt=True)
    assert code == 0 and console.sent == ["我要投诉", "help please", "/request_human"]
    out = console.out.getvalue().splitlines()
    assert out[0] == "You: 客服：需要为您转人工客服吗？"  # the first prompt: still English
    assert out[1] == "      [1] 好的，转人工   [2] 不用了，谢谢"
    assert out[2] == "      （输入编号选择，或直接输入您的问题）"
    assert out[3] == "我：Kefu: Would you like a human agent?"
    assert out[5] == "      (type a number to choose, or write your own message)"
    # a button number says nothing about the language: the reply does
    assert out[6] == "You: 客服：好的，正在为您转接。"
    assert out[7] == "我：（已开始新的对话）"
    assert out[8] == "我："


def test_notices_follow_the_customers_language_when_the_server_cannot_answer():
    out = io.StringIO()
    console = Console("http://127.0.0.1:9", out=out, timeout=2, language="en")
    console.run(io.StringIO("我的订单到哪了\n/quit\n"), prompt=False)
    assert "您的消息没有发出——按回车键重新发送" in out.getvalue()
    assert "your message was not sent" not in out.getvalue()


def test_the_start_language_is_the_terminals():
    assert locale_language({"LANG": "zh_CN.UTF-8"}) == "zh"
    assert locale_language({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"
    assert locale_language({"LC_ALL": "", "LC_MESSAGES": "zh_TW", "LANG": "C"}) == "zh"
    assert locale_language({}) == "en"
    assert Console("http://x", language="fr").language in ("en", "zh")  # unknown: the locale


def test_every_console_line_exists_in_every_language_with_the_same_fields():
    fields = {key: set(re.findall(r"{(\w+)}", text)) for key, text in MESSAGES["en"].items()}
    for language, texts in MESSAGES.items():
        assert texts.keys() == MESSAGES["en"].keys(), language
        assert {k: set(re.findall(r"{(\w+)}", t)) for k, t in texts.items()} == fields
    assert not any(has_cjk(text) for text in MESSAGES["en"].values())
    assert all(has_cjk(text) for text in MESSAGES["zh"].values())
