"""Leak audit: conversations seeded with personal data, then every byte at rest is searched.

Used by the e2e test (10 conversations) and ``benchmarks/leak_audit.py`` (100, debug logs).
Each conversation carries its own generated values (names, phones, e-mails, Chinese ID and
bank card numbers with valid check digits, IBANs, addresses), so a leak is attributable. Besides
the classic shapes every conversation has one of the harder ones — a lower-case name after a cue
("my name is zhang wei"), a capitalised name after "I'm" ("I'm Zhang Wei"), a phone number in
full-width digits (``１３８…``), or a name or address said without any cue ("hi, Emma Garcia
here", "王芳的快递到哪了", "杭州市西湖区文三路90号3栋1201室能送吗") — and every conversation
but each third one has a sender id that is itself personal data: a phone number
(Telegram/WhatsApp style) or an e-mail address. Sender ids must be stored as sender tokens
only (tracker store, events, tickets, logs).
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from components.privacy.pii import PIIMasker
from components.privacy.recognisers import TOKEN
from components.privacy.vault import Vault
from deployment import pii_samples as samples
from deployment.servers import VAULT_KEY, Servers

#: The kind under which a conversation's personal sender id is listed in ``values``.
SENDER = "sender_id"


@dataclass
class Conversation:
    """One synthetic customer conversation: its sender id and the turns it sends."""

    sender: str
    messages: list[str]
    values: dict[str, str]


def stored_sender(sender: str) -> str:
    """The sender token the servers store for ``sender`` (same key: ``KEFU_VAULT_KEY``)."""
    return PIIMasker(VAULT_KEY).sender_token(sender)


def _hard_turn(n: int, rng: random.Random, values: dict[str, str]) -> str:
    """The n-th conversation's turn with one of the shapes plain patterns used to miss.

    Shapes 3-5 have no cue at all: only the learned recogniser finds those names and addresses.
    """
    shape = n % 6
    if shape == 3:
        values["uncued_name"] = samples.en_name(rng)
        return rng.choice(
            [
                f"hi, {values['uncued_name']} here, my parcel is late",
                f"the order for {values['uncued_name']} never arrived",
            ]
        )
    if shape == 4:
        values["uncued_zh_name"] = samples.zh_name(rng)
        return f"{values['uncued_zh_name']}的快递到哪了"
    if shape == 5:
        values["uncued_address"] = samples.zh_address(rng, with_unit=True)
        return f"{values['uncued_address']}能送吗"
    if shape == 0:
        values["lower_name"] = samples.pinyin_name(rng).lower()
        return rng.choice(
            [
                f"my name is {values['lower_name']}, where is my parcel?",
                f"this is {values['lower_name']} from shanghai, I need help",
            ]
        )
    if shape == 1:
        values["im_name"] = samples.pinyin_name(rng)
        return f"I'm {values['im_name']}, my parcel is late"
    values["full_width_phone"] = samples.full_width(samples.cn_mobile(rng))
    return f"我的手机号是{values['full_width_phone']}，麻烦回电"


def _sender(n: int, seed: int, rng: random.Random, values: dict[str, str]) -> str:
    """A phone number, an e-mail address or (each third conversation) an opaque id."""
    if n % 3 == 1:
        values[SENDER] = samples.cn_mobile(rng)
    elif n % 3 == 2:
        values[SENDER] = f"buyer{n}.{rng.randint(100, 999)}@example.com"
    else:
        return f"leak-audit-{seed}-{n}"
    return values[SENDER]


def conversations(count: int, seed: int = 0) -> list[Conversation]:
    """``count`` conversations, each with distinct personal data in 6-7 turns."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        card = samples.luhn_card(rng.choice(["4", "5", "6222"]), 16, rng)
        values = {
            "en_name": samples.en_name(rng),
            "zh_name": samples.zh_name(rng),
            "phone": samples.cn_mobile(rng),
            "email": f"customer{n}.{rng.randint(100, 999)}@example.cn",
            "cn_id": samples.cn_id(rng),
            "card": " ".join(card[i : i + 4] for i in range(0, 16, 4)),
            "iban": samples.gb_iban(rng),
            "address": samples.zh_address(rng),
        }
        turns = [
            f"hi, my name is {values['en_name']}",
            f"where is my order? my phone is {values['phone']}",
            f"you can email me at {values['email']}",
            f"身份证号 {values['cn_id']}，我要投诉",
            f"I paid with card {values['card']}, how long do refunds take?",
            f"我叫{values['zh_name']}，请寄到{values['address']}",
            f"refund to my IBAN {values['iban']} please",
            "human please",
        ]
        picked = [turns[0], *rng.sample(turns[1:-1], 4)]
        picked.insert(rng.randint(1, len(picked)), _hard_turn(n, rng, values))
        sender = _sender(n, seed, rng, values)
        out.append(Conversation(sender, [*picked, turns[-1]], values))
    return out


def _forms(value: str) -> set[str]:
    """How a value could appear at rest: as typed, JSON-escaped, without spaces, NFKC."""
    normal = unicodedata.normalize("NFKC", value)
    forms = {value, json.dumps(value)[1:-1], value.replace(" ", ""), normal}
    if re.fullmatch(r"[\d ]+", normal):
        forms.add(re.sub(r"\D", "", normal))
    return {f for f in forms if f}


def sent_values(conv: Conversation) -> list[tuple[str, str]]:
    """(kind, value) of the conversation's values it actually sent (its sender id included)."""
    return [
        (kind, value)
        for kind, value in conv.values.items()
        if kind == SENDER or any(value in m for m in conv.messages)
    ]


@dataclass
class AuditResult:
    """What the audit found: raw values in stored files and logs, and the vault round trip."""

    conversations: int
    turns: int
    values_sent: int  # distinct seeded values that occurred in a message or as a sender id
    files_scanned: list[str]
    leaks: list[str] = field(default_factory=list)  # "kind in file"
    tokens_found: int = 0  # value tokens in the store, plus the personal sender ids' tokens
    tokens_revealed: int = 0  # tokens whose vault value is one of the seeded values
    values_recoverable: int = 0  # seeded values whose token is in the store and reveals back
    sent_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def vault_round_trip(self) -> float:
        """Share of masked values the vault turned back into the originals."""
        return self.tokens_revealed / self.tokens_found if self.tokens_found else 0.0


def play(say: Callable[[str, str], object], convs: list[Conversation]) -> int:
    """Send every conversation's messages with ``say(sender, text)``; return the turns sent."""
    turns = 0
    for conv in convs:
        for text in conv.messages:
            say(conv.sender, text)
            turns += 1
    return turns


def run(servers: Servers, convs: list[Conversation]) -> AuditResult:
    """Play the conversations, then search every file under KEFU_HOME and the logs."""
    turns = play(servers.say, convs)
    files = [p for p in servers.home.rglob("*") if p.is_file() and p.name != "vault.db"]
    files += [p for p in servers.logs.values() if p not in files]
    contents = {
        str(p.relative_to(servers.home)) if p.is_relative_to(servers.home) else p.name: (
            p.read_bytes().decode("utf-8", "ignore")
        )
        for p in files
    }

    def stored_rows(tokens: list[str]) -> list[tuple[str, str]]:
        with sqlite3.connect(servers.tracker_db) as conn:  # this audit's conversations only
            marks = ",".join("?" * len(tokens))
            return conn.execute(
                f"SELECT sender_id, data FROM events WHERE sender_id IN ({marks})", tokens
            ).fetchall()

    return audit(convs, turns, contents, stored_rows, Vault(VAULT_KEY, servers.home / "vault.db"))


def audit(
    convs: list[Conversation],
    turns: int,
    contents: dict[str, str],
    stored_rows: Callable[[list[str]], list[tuple[str, str]]],
    vault: Vault,
) -> AuditResult:
    """Search ``contents`` (name -> text at rest) for every value the conversations sent.

    Args:
        convs: The conversations played.
        turns: How many messages were sent.
        contents: Everything at rest, by name (files, table dumps, queue messages, logs).
        stored_rows: ``(sender_id, event JSON)`` rows of the tracker store for these sender
            tokens (the vault round trip is checked on their tokens).
        vault: The vault the servers wrote.
    """
    sent = [pair for conv in convs for pair in sent_values(conv)]
    result = AuditResult(
        conversations=len(convs),
        turns=turns,
        values_sent=len({value for _, value in sent}),
        files_scanned=sorted(contents),
    )
    for kind, _ in sent:
        result.sent_by_kind[kind] = result.sent_by_kind.get(kind, 0) + 1
    for kind, value in sent:
        for name, text in contents.items():
            if any(form in text for form in _forms(value)):
                result.leaks.append(f"{kind} in {Path(name).name}")
    tokens_of = {stored_sender(conv.sender): conv for conv in convs}
    rows = stored_rows(list(tokens_of))
    tokens = {token for _, data in rows for token in TOKEN.findall(data)}
    tokens |= {sender for sender, _ in rows if SENDER in tokens_of[sender].values}
    revealed = {token: vault.reveal(token) for token in tokens}
    values = {value for _, value in sent}
    result.tokens_found = len(tokens)
    result.tokens_revealed = sum(1 for v in revealed.values() if v in values)
    result.values_recoverable = len(values & set(revealed.values()))
    return result
