"""Training data for the name/address tagger (:mod:`components.privacy.tagger`).

Three sources, all deterministic for a seed:

* **generated customer-service messages** (English and Chinese): order problems, delivery
  addresses, call-back requests, complaints, hand-overs between family members — in chat style
  (lower case, missing punctuation, a typo now and then) and mostly *without* a cue before the
  name. Values come from Faker: names from English-speaking and other European locales (a shop's
  customers are international), addresses from the same locales split into the parts that
  identify a home — the street line, the flat/suite, the postcode (city, state and country are
  not masked: alone they identify nobody) — and Chinese names and addresses (province, city,
  district, street, house number, building/unit/room) from ``zh_CN``;
* **CLUENER2020 train** (``name`` → NAME, ``address`` → ADDRESS; the other eight types are
  ordinary text): real Chinese sentences with names and places in context (research use only:
  the CLUE benchmark data has no licence file);
* **negatives**: real English customer questions (Banking77 train) and Chinese e-commerce
  questions (CIC train) with no labels, so product names, brands, dates and amounts stay text.

No template or value of the benchmarks (Presidio's synthetic rows, CLUENER dev, the generated
Chinese PII set in ``benchmarks/guard.py``) is used here. Engine only: no ``rasa``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

EN_NAME_LOCALES = (
    "en_US",
    "en_GB",
    "en_AU",
    "en_CA",
    "en_IE",
    "de_DE",
    "fr_FR",
    "es_ES",
    "it_IT",
    "nl_NL",
    "pl_PL",
    "pt_BR",
    "sv_SE",
    "fi_FI",
    "hu_HU",
    "cs_CZ",
    "da_DK",
    "no_NO",
)
EN_ADDRESS_LOCALES = ("en_US", "en_GB", "en_AU", "en_CA", "de_DE", "fr_FR", "nl_NL", "fi_FI")


@dataclass
class Sample:
    """One training text with its labelled spans ``(label, start, end)``."""

    text: str
    spans: list[tuple[str, int, int]] = field(default_factory=list)
    source: str = ""


class _Builder:
    """Assembles a text from literal parts and labelled values."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[tuple[str, int, int]] = []
        self.size = 0

    def add(self, text: str, label: str | None = None) -> _Builder:
        if label and text:
            self.spans.append((label, self.size, self.size + len(text)))
        self.parts.append(text)
        self.size += len(text)
        return self

    def sample(self, source: str) -> Sample:
        return Sample("".join(self.parts), list(self.spans), source)


# ---------------------------------------------------------------------------------- English
_EN_TEMPLATES = (
    "hi this is {name}, my order still hasn't arrived",
    "{name} here. the parcel came damaged",
    "hello, {name} speaking, I need to change my delivery address to {addr}",
    "please send the replacement to {name}, {addr}",
    "the package for {name} went to {addr} instead",
    "can {first} pick up the order for me? she lives at {addr}",
    "my husband {name} placed the order, not me",
    "call back {name} when the courier is near",
    "recipient: {name}\n{addr}",
    "Ship to {name}\n{addr}",
    "I moved to {addr}, please update my account",
    "deliver it to {addr} please",
    "is {addr} inside your delivery area?",
    "{name} says the refund never came through",
    "I spoke to your agent {first} yesterday and nothing happened",
    "Dear support, my name is {name} and I want to complain",
    "order was placed by {name} for {name2}",
    "the invoice should say {name}, {addr}",
    "why was my order sent to {addr}? I live at {addr2}",
    "{first} told me to contact you about order 48213",
    "thanks {first}, that fixed it",
    "this is for {name} at {addr}",
    "billing address {addr}, shipping address {addr2}",
    "{name}\n{addr}",
    "customer {name} wants to cancel",
    "my neighbour {name} received my parcel",
    "hey its {first} again, any news?",
    "Regards,\n{name}",
    "can you confirm the address {addr}",
    "I am writing on behalf of {name}",
    "the courier left it with {name} next door",
    "{name}, {addr} - that is where it should go",
    "I'm {name}, I ordered the blue kettle last week",
    "please ask {name} to call me back",
    "contact person {name}",
    "{first}, can you help me with a refund?",
    "{first} is my daughter, she can collect the parcel",
    "I want to add {name} as a second card holder",
    "remove {name} from my account please",
    "my son {first} ordered this without asking",
    "the parcel was signed for by {name}",
    "{first}'s order never came",
    "I bought it together with {name}",
    "{first} and {first2} both got the wrong size",
    "Name: {name}\nOrder: 48213\nIssue: broken lid",
    "User: {name}",
    "Customer name - {name}",
    "thanks for your help, {first}!",
    "cheers, {first}",
    "- {name}",
    "Mr. {last} never received the invoice",
    "Dr. {name} needs the prescription glasses by Friday",
    "Mrs. {last} from number {n} called about the delivery",
    "{name} left a complaint yesterday about a late delivery",
    "{name} is not happy with the replacement",
    "{name} wants to know when the sale starts",
    "who is {name}? I never ordered anything for them",
    "tell {first} the package is at the post office",
    "send the gift card to {first}, it's her birthday",
    "Was the refund sent to {name} or to me?",
    "{name}'s account was charged twice",
    "my landlord {name} returned the parcel to sender",
    "your colleague {first} promised me a discount",
    "The new address is {addr}.",
    "Address: {addr}",
    "we live at {addr} since March",
    "could the driver leave it at {addr}?",
    "pick-up point: {addr}",
    "{name} lives at {addr}",
    "Please return to {addr} in case of an issue.",
    "the warehouse sent it to {addr} by mistake",
    # names in ordinary prose, not only in requests
    "{name} is very helpful, you can always ask her",
    "{first} and {last} were both at the meeting",
    "I met {name} at the store last week",
    "{name} wrote the review about the headphones",
    "According to {name}, the parcel was opened",
    "The book was written by {name} in 1998",
    "{name} will be away until Monday",
    "{first} told {first2} about the sale",
    "We thank {name} for the feedback",
    "{name} said: the box was empty",
    "{first}: where is my order?\nAgent: let me check",
    "I called {name} twice and nobody answered",
    "The gift is from {name}",
    "{name}, our account manager, has left the company",
)
# log lines around a message (the log filter runs the tagger too); ``{message}`` may hold a name
_LOG_FRAMES = (
    "Received user message '{message}' with intent 'order_status' and entities '[]'",
    'Logged UserUtterance - tracker now has {n} events. "text": "{message}"',
    "channels.rest.turn_failed sender=sender_{hex} error=RuntimeError language=en",
    'HTTP Request: POST http://127.0.0.1:5005/webhooks/rest/webhook "HTTP/1.1 200 OK"',
    "nlg.rephrase action=utter_greet rephrased=False reason=check_failed:number latency_s=0.{n}",
    "guard.hit action=flag categories=insult",
    "knowledge.answer source=returns.md relevance=0.{n} language=en",
    "Predicted next action 'action_listen' with confidence 1.00.",
    "Policy prediction ended with events '[<rasa.shared.core.events.SlotSet object at 0x7f>]'.",
)
# sentences that start with a capitalised word and a comma, as replies and customers write them
_EN_OPENERS = (
    "Sorry",
    "Thanks",
    "Hello",
    "Hi",
    "Yes",
    "No",
    "Okay",
    "OK",
    "Great",
    "Unfortunately",
    "However",
    "Please",
    "Well",
    "Sure",
    "Perfect",
    "Also",
    "Actually",
    "Honestly",
    "Again",
)
# frames that put a name next to a real customer message (Banking77 train)
_EN_FRAMES = (
    "{name}: {message}",
    "hi, {name} here. {message}",
    "{message} - {name}",
    "{message}\nthanks, {first}",
    "{first}, {message}",
    "this is {name}. {message}",
    "{message} (asking for {name})",
    "my mother {name} asks: {message}",
)
_EN_NEGATIVES = (
    "my order KF{n} has not arrived yet",
    "I was charged twice on {date}",
    "it has been like that since {year}",
    "the order from {date} at {time} is missing",
    "My IBAN is {iban}",
    "my licence plate is {plate}",
    "tracking number {ean}",
    "call me on {phone}",
    "I live in {city}",
    "she moved here from {country}",
    "do you deliver to {country}?",
    "{company} sent me the wrong item",
    "{company} is our supplier",
    "the {city} store was closed",
    "it costs {n}.50 dollars",
    "I am {age} years old",
    "my card ending in {n4} was declined",
    "the {year} model is out of stock",
    "Order date: {date}\nTotal: {n}.99",
    "the company was founded in {year} and ships worldwide",
    "a {year} {nationality} film about a courier",
    "the {year} {company} catalogue has it on page {n4}",
    "in the {decade}s this brand was popular",
    "my {ordinal} order this year",
    "Celebrating its {ordinal} year, {company} offers free shipping",
    "{company} is a {nationality} retailer",
    "{product} is our best-selling speaker",
    "{product} arrived broken, the {company} logo is scratched",
    "Welcome to {city}! Free delivery within {n4} km",
    "I paid {n}.99 for the Blue Kettle and it broke",
    "do you ship to Canada?",
    "the Samsung Galaxy I ordered on Monday is missing",
    "can I return my Nike shoes after 30 days",
    "What is the status of order #{n}",
    "Is the Apple Watch Series 9 in stock in London?",
    "I want a refund for the Sony headphones",
    "Your website says delivery by Friday, March 3",
    "Thanks for the help, Customer Service Team",
    "hi, any update on my refund",
    "I live in Paris, can you deliver there",
    "My Amazon Prime order came from Berlin",
    "the IKEA table has a missing screw",
    "is Christmas delivery guaranteed?",
)


def _en_name(fake, rng: random.Random) -> str:  # noqa: ANN001 - a Faker
    roll = rng.random()
    if roll < 0.55:
        name = f"{fake.first_name()} {fake.last_name()}"
    elif roll < 0.7:
        name = fake.first_name()
    elif roll < 0.8:
        name = f"{fake.first_name()} {fake.first_name()[0]}. {fake.last_name()}"
    else:
        name = fake.name()
        for title in ("Mr. ", "Mrs. ", "Ms. ", "Dr. ", "Miss ", "Prof. ", "Herr ", "Frau "):
            name = name.replace(title, "")
        name = name.split(" MD")[0].split(" DDS")[0].split(" PhD")[0].strip()
    return name


def _en_address(fake, rng: random.Random, builder: _Builder, multiline: bool) -> None:  # noqa: ANN001
    """Append an address; street line, unit and postcode are ADDRESS, city and state are not."""
    street = fake.street_address().split("\n")[-1]
    unit = None
    for word in (" Apt. ", " Suite "):
        if word in street:
            street, unit = street.split(word)[0], word.strip() + " " + street.split(word)[1]
    if unit is None and fake.locales[0] == "en_US" and rng.random() < 0.3:
        unit = fake.secondary_address()
    sep = "\n" if multiline else ", "
    builder.add(street, "ADDRESS")
    if unit:
        builder.add(sep if rng.random() < 0.5 else " ").add(unit, "ADDRESS")
    roll = rng.random()
    if roll < 0.7:
        builder.add(sep)
        postcode = fake.postcode()
        city = fake.city()
        if fake.locales[0] in ("en_US", "en_CA", "en_AU"):
            state = fake.state_abbr() if hasattr(fake, "state_abbr") else ""
            builder.add(f"{city}, {state} " if state else f"{city} ").add(postcode, "ADDRESS")
        elif fake.locales[0] == "en_GB":
            builder.add(city + sep).add(postcode, "ADDRESS")
        else:
            builder.add(postcode, "ADDRESS").add(" " + city)
        if rng.random() < 0.2:
            builder.add(sep + fake.current_country())


def _fill(template: str, builder: _Builder, value: Callable[[str], None]) -> None:
    """Append ``template`` to ``builder``; each ``{slot}`` is appended by ``value(slot)``."""
    rest = template
    while rest:
        start = rest.find("{")
        if start < 0:
            builder.add(rest)
            break
        builder.add(rest[:start])
        end = rest.index("}", start)
        value(rest[start + 1 : end])
        rest = rest[end + 1 :]


def _en_value(builder: _Builder, name_fake, addr_fake, multiline: bool, rng, slot: str) -> None:  # noqa: ANN001
    """Append the value of one English template slot (labelled when it is personal data)."""
    if slot in ("name", "name2"):
        builder.add(_en_name(name_fake, rng), "NAME")
    elif slot in ("first", "first2"):
        builder.add(name_fake.first_name(), "NAME")
    elif slot == "last":
        builder.add(name_fake.last_name(), "NAME")
    elif slot == "n":
        builder.add(str(rng.randint(1, 300)))
    else:
        _en_address(addr_fake, rng, builder, multiline)


def _zh_value(builder: _Builder, fake, rng: random.Random, slot: str) -> None:  # noqa: ANN001
    """Append the value of one Chinese template slot."""
    if slot == "name":
        if rng.random() < 0.15:  # 王先生: the surname is the name, the title is not
            builder.add(fake.last_name(), "NAME").add(rng.choice(("先生", "女士")))
        else:
            builder.add(fake.name(), "NAME")
    else:
        builder.add(_zh_address(fake, rng), "ADDRESS")


def _chat_style(text: str, spans: list, rng: random.Random) -> str:
    """Lower-case, drop the final punctuation or add a typo outside the labelled values."""
    roll = rng.random()
    if roll < 0.25:
        return text.lower()
    if roll < 0.35:
        return text.rstrip(".!?")
    if roll < 0.45:
        free = [
            i
            for i, ch in enumerate(text)
            if ch.isalpha() and not any(s <= i < e for _, s, e in spans)
        ]
        if free:
            i = rng.choice(free)
            return text[:i] + text[i] + text[i:]  # a doubled letter keeps the length shift
    return text


def _fill_negative(template: str, fake, rng: random.Random) -> str:  # noqa: ANN001 - a Faker
    """A negative template with numbers, dates, codes, places and companies (no personal data)."""
    values = {
        "{n}": lambda: str(rng.randint(1000, 999999)),
        "{n4}": lambda: str(rng.randint(1000, 9999)),
        # fixed ranges: Faker's own dates run up to today, which would change the data daily
        "{date}": lambda: (dt.date(2015, 1, 1) + dt.timedelta(days=rng.randrange(4018))).strftime(
            rng.choice(["%Y-%m-%d", "%d/%m/%Y", "%B %d, %Y"])
        ),
        "{time}": lambda: f"{rng.randrange(24):02d}:{rng.randrange(60):02d}",
        "{year}": lambda: str(rng.randint(1950, 2026)),
        "{iban}": fake.iban,
        "{plate}": fake.license_plate,
        "{ean}": fake.ean13,
        "{phone}": fake.phone_number,
        "{city}": fake.city,
        "{country}": fake.current_country if rng.random() < 0.3 else fake.country,
        "{company}": fake.company,
        "{age}": lambda: str(rng.randint(18, 90)),
        "{decade}": lambda: str(rng.choice([50, 60, 70, 80, 90])),
        "{ordinal}": lambda: rng.choice(["2nd", "3rd", "4th", "10th", "21st", "first", "fifth"]),
        "{nationality}": lambda: rng.choice(
            ["Norwegian", "Polish", "Hungarian", "German", "Brazilian", "Canadian", "Irish"]
        ),
        "{product}": lambda: fake.word().capitalize() + rng.choice(["", " Pro", " X", " 2"]),
    }
    for key, make in values.items():
        while key in template:
            template = template.replace(key, make(), 1)
    return template


def english_samples(count: int, seed: int, messages: Sequence[str] = ()) -> Iterator[Sample]:
    """Generated English messages with names and addresses (see the module docstring).

    Args:
        count: How many.
        seed: Seed of every choice.
        messages: Real customer messages; a fifth of the samples put a name next to one.
    """
    from faker import Faker

    rng = random.Random(seed)
    names = {loc: Faker(loc) for loc in EN_NAME_LOCALES}
    addresses = {loc: names[loc] for loc in EN_ADDRESS_LOCALES}
    for fake in names.values():
        fake.seed_instance(rng.randrange(1 << 30))
    for _ in range(count):
        fake = names[rng.choice(EN_ADDRESS_LOCALES)]
        if rng.random() < 0.2:
            yield Sample(_fill_negative(rng.choice(_EN_NEGATIVES), fake, rng), [], "en_negative")
            continue
        roll = rng.random()
        if messages and roll < 0.05:  # a real message after an opener: no personal data
            message = rng.choice(messages)
            text = f"{rng.choice(_EN_OPENERS)}, {message[:1].lower()}{message[1:]}"
            yield Sample(text, [], "en_negative")
            continue
        if messages and roll < 0.1:  # a log line, with a name in the message half of the time
            frame = rng.choice(_LOG_FRAMES).replace("{hex}", f"{rng.getrandbits(64):016x}")
            frame = frame.replace("{n}", str(rng.randint(1, 999)))
            if "{message}" in frame and rng.random() < 0.5:
                inner = rng.choice(("hi, {name} here", "this is for {name}", "{first}, thanks"))
                template = frame.replace("{message}", inner)
            else:
                message = rng.choice(messages).replace("{", "(").replace("}", ")")
                yield Sample(frame.replace("{message}", message), [], "en_negative")
                continue
        elif messages and rng.random() < 0.2:
            frame = rng.choice(_EN_FRAMES)
            message = rng.choice(messages)
            if frame.startswith("{first}, "):
                message = message[:1].lower() + message[1:]
            template = frame.replace("{message}", message.replace("{", "(").replace("}", ")"))
        else:
            template = rng.choice(_EN_TEMPLATES)
        builder = _Builder()
        multiline = "\n" in template
        name_fake = names[rng.choice(EN_NAME_LOCALES)]
        addr_fake = addresses[rng.choice(EN_ADDRESS_LOCALES)]

        _fill(
            template,
            builder,
            partial(_en_value, builder, name_fake, addr_fake, multiline, rng),
        )
        sample = builder.sample("en_generated")
        styled = _chat_style(sample.text, sample.spans, rng)
        if len(styled) != len(sample.text):  # a typo before a value moves it
            styled, sample.spans = _shift(sample.text, styled, sample.spans)
        yield Sample(styled, sample.spans, sample.source)


def _shift(old: str, new: str, spans: list) -> tuple[str, list]:
    """Spans of ``old`` moved to ``new`` after one inserted character."""
    at = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), len(old))
    return new, [(label, s + (s >= at), e + (s >= at)) for label, s, e in spans]


# ---------------------------------------------------------------------------------- Chinese
_ZH_TEMPLATES = (
    "{name}的快递到哪了",
    "我是{name}，订单还没发货",
    "{name}昨天下的单怎么还没到",
    "帮我寄到{addr}",
    "地址是{addr}，麻烦改一下",
    "收件人{name}，地址{addr}",
    "{name} {addr}",
    "刚才{name}打电话说地址填错了，应该是{addr}",
    "我老婆{name}买的东西能退吗",
    "麻烦让{name}给我回个电话",
    "快递被送到{addr}去了，我住{addr2}",
    "{name}你好，我的退款什么时候到账",
    "谢谢{name}，问题解决了",
    "请把发票寄给{name}",
    "我搬家了，新地址{addr}",
    "送货上门到{addr}可以吗",
    "{addr}能送吗",
    "代{name}咨询一下保修",
    "客服{name}说三天内处理，现在还没消息",
    "{name}，{addr}，尽快发货",
)


def _zh_address(fake, rng: random.Random) -> str:  # noqa: ANN001 - a Faker
    parts = [fake.province()]
    if rng.random() < 0.8:
        parts.append(fake.city_name() + "市")
    parts.append(fake.district() + "区")
    if rng.random() < 0.85:
        parts.append(fake.street_name() + f"{rng.randint(1, 999)}号")
    if rng.random() < 0.5:
        floor, room = rng.randint(1, 30), rng.randint(1, 9)
        parts.append(f"{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元{floor}{room:02d}室")
    start = rng.randint(0, 1) if len(parts) > 3 else 0
    return "".join(parts[start:])


def chinese_samples(count: int, seed: int) -> Iterator[Sample]:
    """Generated Chinese messages with names and addresses (see the module docstring)."""
    from faker import Faker

    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    for _ in range(count):
        template = rng.choice(_ZH_TEMPLATES)
        builder = _Builder()

        _fill(template, builder, partial(_zh_value, builder, fake, rng))
        yield builder.sample("zh_generated")


def cluener_samples(path: Path) -> Iterator[Sample]:
    """CLUENER rows: ``name`` → NAME, ``address`` → ADDRESS, other types unlabelled."""
    kinds = {"name": "NAME", "address": "ADDRESS"}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            spans = [
                (kinds[e["type"]], e["start"], e["end"])
                for e in row.get("entities", [])
                if e["type"] in kinds
            ]
            yield Sample(row["text"], spans, "cluener")


def response_samples(domain: Path) -> list[Sample]:
    """The assistant's own replies (every text of the domain's responses) as negatives."""
    import re

    import yaml

    data = yaml.safe_load(domain.read_text(encoding="utf-8")) or {}
    out = []
    for variations in (data.get("responses") or {}).values():
        for variation in variations or []:
            text = (variation or {}).get("text")
            if text:
                out.append(Sample(re.sub(r"\{[a-z_]+\}", "KF100234", text), [], "negative:domain"))
    return out


def negative_samples(paths: list[Path], limit: int, seed: int) -> list[Sample]:
    """Unlabelled real customer messages (CSV or JSONL ``text``), ``limit`` per file."""
    rng = random.Random(seed)
    out: list[Sample] = []
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            if path.suffix == ".csv":
                texts = [row["text"] for row in csv.DictReader(handle)]
            else:
                texts = [json.loads(line)["text"] for line in handle if line.strip()]
        rng.shuffle(texts)
        out += [Sample(t, [], f"negative:{path.parent.name}") for t in texts[:limit]]
    return out


def build_corpus(
    datasets: Path, *, english: int, chinese: int, negatives: int, seed: int
) -> list[Sample]:
    """Every training sample, shuffled (deterministic for ``seed``).

    Args:
        datasets: The public datasets folder (``KEFU_DATASETS``).
        english: Generated English messages.
        chinese: Generated Chinese messages.
        negatives: Real unlabelled messages per negative set (Banking77, CIC).
        seed: Seed of every random choice.

    Returns:
        The samples.
    """
    banking = [s.text for s in negative_samples([datasets / "banking77" / "train.csv"], 10**6, 0)]
    samples = list(english_samples(english, seed, banking[negatives:]))
    samples += list(chinese_samples(chinese, seed + 1))
    samples += list(cluener_samples(datasets / "cluener2020" / "train.jsonl"))
    samples += [Sample(t, [], "negative:banking77") for t in banking[:negatives]]
    samples += negative_samples([datasets / "cic" / "train.jsonl"], negatives, seed + 2)
    from components.assistants import Assistant, assistant_names

    for name in assistant_names():
        samples += response_samples(Assistant(name).domain) * 3
    random.Random(seed + 3).shuffle(samples)
    return samples
