"""Leak audit: conversations seeded with personal data, then every byte at rest is searched.

Used by the e2e test (10 conversations) and ``benchmarks/leak_audit.py`` (100, debug logs).
Each conversation carries its own generated values (names, phones, e-mails, Chinese ID and
bank card numbers with valid check digits, IBANs, addresses), so a leak is attributable.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
from dataclasses import dataclass, field

from components.privacy.recognisers import TOKEN
from components.privacy.vault import Vault
from tests import pii_samples as samples
from tests.e2e.harness import VAULT_KEY, Servers


@dataclass
class Conversation:
    sender: str
    messages: list[str]
    values: dict[str, str]


def conversations(count: int, seed: int = 0) -> list[Conversation]:
    """``count`` conversations, each with distinct personal data in 4-6 turns."""
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
        picked = [turns[0], *rng.sample(turns[1:-1], 4), turns[-1]]
        out.append(Conversation(f"leak-audit-{seed}-{n}", picked, values))
    return out


def _forms(value: str) -> set[str]:
    """How a value could appear at rest: as typed, JSON-escaped, without spaces."""
    forms = {value, json.dumps(value)[1:-1], value.replace(" ", "")}
    if re.fullmatch(r"[\d ]+", value):
        forms.add(re.sub(r"\D", "", value))
    return {f for f in forms if f}


@dataclass
class AuditResult:
    conversations: int
    turns: int
    values_sent: int  # distinct seeded values that occurred in a message
    files_scanned: list[str]
    leaks: list[str] = field(default_factory=list)  # "kind in file"
    tokens_found: int = 0
    tokens_revealed: int = 0  # tokens whose vault value is one of the seeded values
    values_recoverable: int = 0  # seeded values whose token is in the store and reveals back

    @property
    def vault_round_trip(self) -> float:
        return self.tokens_revealed / self.tokens_found if self.tokens_found else 0.0


def run(servers: Servers, convs: list[Conversation]) -> AuditResult:
    """Play the conversations, then search every file under KEFU_HOME and the logs."""
    turns = 0
    for conv in convs:
        for text in conv.messages:
            servers.say(conv.sender, text)
            turns += 1
    files = [p for p in servers.home.rglob("*") if p.is_file() and p.name != "vault.db"]
    files += [p for p in servers.logs.values() if p not in files]
    contents = {p: p.read_bytes().decode("utf-8", "ignore") for p in files}
    sent = [
        (kind, value)
        for conv in convs
        for kind, value in conv.values.items()
        if any(value in m for m in conv.messages)
    ]
    result = AuditResult(
        conversations=len(convs),
        turns=turns,
        values_sent=len({value for _, value in sent}),
        files_scanned=sorted(str(p.relative_to(servers.home)) for p in files),
    )
    for kind, value in sent:
        for path, text in contents.items():
            if any(form in text for form in _forms(value)):
                result.leaks.append(f"{kind} in {path.name}")
    with sqlite3.connect(servers.tracker_db) as conn:  # this audit's conversations only
        senders = [conv.sender for conv in convs]
        marks = ",".join("?" * len(senders))
        rows = conn.execute(f"SELECT data FROM events WHERE sender_id IN ({marks})", senders)
        tokens = {token for (data,) in rows for token in TOKEN.findall(data)}
    vault = Vault(VAULT_KEY, servers.home / "vault.db")
    revealed = {token: vault.reveal(token) for token in tokens}
    values = {value for _, value in sent}
    result.tokens_found = len(tokens)
    result.tokens_revealed = sum(1 for v in revealed.values() if v in values)
    result.values_recoverable = len(values & set(revealed.values()))
    return result
