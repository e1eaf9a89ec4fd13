"""End to end in Chinese: the real servers, a Chinese customer, a language switch, the console."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from components.assistants import Assistant
from components.text import customer_language
from deployment.commands import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _english_templates() -> list[str]:
    """The start of every English response, to catch one leaking into a Chinese conversation."""
    domain = yaml.safe_load(Assistant("shop").domain.read_text(encoding="utf-8"))
    return [
        v["text"].split("{")[0][:25]
        for variations in domain["responses"].values()
        for v in variations
        if not v.get("condition")
    ]


class Transcript:
    """Every reply of one conversation, for the checks at the end."""

    def __init__(self, servers, sender: str) -> None:
        self.servers, self.sender, self.replies = servers, sender, []

    def say(self, text: str) -> list[dict]:
        messages = self.servers.say(self.sender, text)
        assert messages, f"no reply to {text!r}"
        self.replies += messages
        return messages

    def text(self, text: str) -> str:
        return "\n".join(m.get("text", "") for m in self.say(text))


def test_a_chinese_customer_is_served_in_chinese(servers):
    chat = Transcript(servers, "e2e-zh-customer")
    assert "智能客服" in chat.text("你好")
    assert "订单号" in chat.text("我的订单到哪了")
    ask = chat.text("KF100234")
    assert "手机号或邮箱" in ask and "SF1402938475" not in ask  # nothing before verification
    status = chat.text("手机号是13800138000")
    assert "KF100234" in status and "无线耳机" in status and "已发货" in status
    assert "顺丰速运" in status and "SF1402938475" in status

    returns = chat.text("退货政策是什么")
    assert "来源：退货政策" in returns and "(returns.zh.md)" in returns
    follow_up = chat.text("那退款呢")
    assert "(refunds.zh.md)" in follow_up

    refused = chat.say("VIP会员有什么权益")  # the policies say nothing about it
    # refused as the NLU routes it: knowledge base (没有找到), out of scope (超出) or fallback
    assert any(words in refused[0]["text"] for words in ("没有找到", "超出", "没太明白"))
    assert refused[-1]["buttons"][0]["payload"] == "/request_human"
    assert refused[-1]["buttons"][0]["title"] == "好的，转人工"
    handoff = chat.text("帮我转人工")
    assert "已为您创建工单 T-" in handoff
    assert "不客气" in chat.text("谢谢啦")
    assert "再见" in chat.text("拜拜")

    leaks = [
        (reply["text"], template)
        for reply in chat.replies
        for template in _english_templates()
        if template in reply.get("text", "")
    ]
    assert not leaks
    for reply in chat.replies:
        assert customer_language(reply.get("text", "")) == "zh", reply


def test_an_insult_in_chinese_gets_a_calm_chinese_reply(servers):
    chat = Transcript(servers, "e2e-zh-insult")
    chat.text("你好")
    reply = chat.say("你们客服是傻逼吗")
    assert reply[0]["text"].startswith("非常抱歉给您带来了不好的体验")
    assert reply[-1]["buttons"][0]["title"] == "好的，转人工"


def test_replies_follow_a_language_switch(servers):
    sender = "e2e-switch"
    assert "Demo Shop assistant" in servers.texts(sender, "hi")
    assert "order number" in servers.texts(sender, "where is my order?")
    assert "phone number or e-mail" in servers.texts(sender, "KF100555")  # no words: stays en
    status = servers.texts(sender, "我的邮箱是 chen.jing@example.com")  # switches mid-form
    assert "跑鞋" in status and "京东物流" in status
    refunds = servers.texts(sender, "how long do refunds take?")  # and back
    assert "(refunds.md)" in refunds and "Source: Refunds policy" in refunds
    assert customer_language(servers.texts(sender, "/thank")) == "en"  # a button keeps it


def _console(servers, lines: list[str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "components.channels.console", "--url", servers.rasa_url],
        input="\n".join(lines) + "\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_console_shows_the_dialogue_and_lets_the_customer_type_after_buttons(servers):
    out = _console(servers, ["blorp zxqv wuzzle fnord", "我的订单KF100871到哪了", "/quit"])
    assert "[1] Yes, connect me   [2] No, thanks" in out
    assert "为保护您的隐私" in out  # the typed question was sent as typed ...
    assert "ticket" not in out and "工单" not in out  # ... not taken as the first button
    assert "INFO" not in out and "Warning" not in out  # only the conversation


def test_a_number_picks_the_button_in_the_console(servers):
    out = _console(servers, ["blorp zxqv wuzzle fnord", "1", "/quit"])
    assert "I have created ticket T-" in out
