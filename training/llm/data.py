"""Training data for the LLM's two jobs, built reproducibly from the project and public data.

``rephrase`` examples: a filled reply template (in the NLG's own prompt,
:func:`components.nlg.prompt.rephrase_messages`) → a rephrasing that keeps every fact. Sources:

* **reply frames** (:data:`FRAMES`): e-commerce replies written several ways each, filled with
  generated slot values; one wording is the template, another (or the same with a friendly
  opening, or a few synonyms swapped) the target. Fact-dense templates (order ids, prices,
  dates, times, URLs, ticket numbers, names of shops and payment methods) teach the model to
  copy those exactly: every pair must pass :func:`~components.nlg.fact_check.check_rephrase`.
* **the domain's own responses** (``rasa_project/domain.yml``): as templates with a varied
  opening, in their language.
* **StackFAQ query paraphrases** (visible queries only): two crowd-written wordings of one
  question, where they pass the same checks — wording variety beyond the shop.

``grounded`` examples: a question and numbered passages (:func:`knowledge.answering.
grounded_messages`) → the passage sentence that answers it with its citation ``[n]``, or exactly
``I don't know.`` when no passage holds the answer. Sources: synthetic policies of other
businesses (:data:`POLICIES`: membership, gift cards, repairs, clinic appointments, wallets...,
filled with generated values; near-domain unanswerable questions show the topic without the
asked fact), StackFAQ (visible queries; passages from each thread's answers, distractors from
other threads and from the shop's own documents, order shuffled) and Chinese medical Q&A
(``medical_qa``). The shop's documents are only ever distractors: the benchmark asks about them.
Every answer must pass :meth:`knowledge.answering.AnswerComposer.check`.

**Held out for the benchmark** (``benchmarks/llm.py``): its templates never appear here and its
slot values cannot — order ids here never have the form ``KF`` + 6 digits, dates are in 2025,
amounts never end in .00/.50/.99, tickets are never ``T-`` + 4 digits, and its items are not in
:data:`ITEMS`. :func:`assert_disjoint` checks this; the benchmark calls it before it runs.

Everything is deterministic for a seed. Datasets are read from ``KEFU_DATASETS`` (default
``../shared/datasets``), never copied.
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from components.assistants import Assistant
from components.nlg.fact_check import check_rephrase
from components.nlg.prompt import rephrase_messages
from components.text import language_of, sentences

DECLINE = "I don't know."

# --------------------------------------------------------------------------- slot values
# (disjoint from benchmarks/llm.py by construction: see the module docstring)
ITEMS = [
    "coffee grinder", "yoga mat", "rice cooker", "bluetooth speaker", "laptop stand",
    "water bottle", "winter jacket", "running shoes", "kettle", "power bank", "umbrella",
    "keyboard", "silk scarf", "air purifier", "baby stroller", "hair dryer",
]  # fmt: skip
NAMES = ["Maria", "Chen Jing", "Tom", "Aisha", "Wang Lei", "Sofia", "Daniel", "Li Na"]
SHOPS = ["Demo Shop", "Kefu Mall", "Northwind Store"]
CARRIERS = ["SF Express", "DHL", "China Post", "UPS", "JD Logistics"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August"]


def _order_id(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return f"SO{rng.randint(1000000, 9999999)}"
    if kind == 1:
        return f"DS-{rng.randint(100000, 999999)}"
    if kind == 2:
        return f"#{rng.randint(10000000, 99999999)}"
    return f"OR{rng.randint(10000, 99999)}{rng.choice('ABCDEFGH')}"


def _date(rng: random.Random) -> str:
    day = rng.randint(1, 28)
    month = rng.randint(1, 8)
    kind = rng.randrange(3)
    if kind == 0:
        return f"2025-{month:02d}-{day:02d}"
    if kind == 1:
        return f"{day} {MONTHS[month - 1]}"
    return f"{MONTHS[month - 1]} {day}"


def _amount(rng: random.Random) -> str:
    whole = rng.randint(5, 4000)
    cents = rng.choice(["", "", ".20", ".45", ".80", ".95", ".30", ".75"])
    return f"{whole}{cents}"


def slot_values(rng: random.Random) -> dict[str, str]:
    """One set of generated slot values for the frames."""
    start = rng.choice([8, 9, 10])
    return {
        "order_id": _order_id(rng),
        "date": _date(rng),
        "amount": _amount(rng),
        "currency": rng.choice(["CNY", "USD", "EUR"]),
        "ticket_id": f"TK-{rng.randint(10000, 99999)}",
        "item": rng.choice(ITEMS),
        "name": rng.choice(NAMES),
        "shop": rng.choice(SHOPS),
        "carrier": rng.choice(CARRIERS),
        "days": str(rng.choice([2, 3, 5, 7, 10, 14, 15, 30])),
        "hours": f"{start}:00 and {rng.choice([17, 18, 20, 22])}:00",
        "url": f"https://help.{rng.choice(['kefu-mall', 'northwind', 'demo-shop'])}.test/"
        f"{rng.choice(['returns', 'track', 'invoice', 'warranty'])}/{rng.randint(10, 99)}",
        "points": str(rng.randint(10, 900)),
        "code": f"{rng.choice(['SAVE', 'WELCOME', 'VIP'])}{rng.randint(5, 30)}",
        "percent": str(rng.choice([5, 10, 15, 20, 30])),
        "qty": str(rng.randint(2, 9)),
        "phone": f"400-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
    }


# --------------------------------------------------------------------------- reply frames
# one reply, several wordings with the same facts (first: the plain template style)
FRAMES: dict[str, list[str]] = {
    "order_shipped": [
        "Your order {order_id} has shipped with {carrier} and should arrive by {date}.",
        "Order {order_id} is on the road with {carrier}; expect it by {date}.",
        "{carrier} is delivering your order {order_id}, which should reach you by {date}.",
        "Good news: order {order_id} left our warehouse with {carrier} and is due by {date}.",
    ],
    "order_processing": [
        "Order {order_id} is being packed and will ship within {days} days.",
        "We are packing order {order_id} now; it ships within {days} days.",
        "Your order {order_id} is in preparation and leaves us within {days} days.",
    ],
    "order_delivered": [
        "Order {order_id} was delivered on {date}.",
        "Our records show order {order_id} was delivered on {date}.",
        "Your order {order_id} reached you on {date}.",
    ],
    "order_delayed": [
        "Order {order_id} is delayed; the new delivery date is {date}.",
        "I'm sorry, order {order_id} is running late and should now arrive on {date}.",
        "Your order {order_id} has been delayed, and it is now expected on {date}.",
    ],
    "refund_issued": [
        "A refund of {amount} {currency} for order {order_id} was issued and arrives within "
        "{days} working days.",
        "We refunded {amount} {currency} for order {order_id}; expect it within {days} working "
        "days.",
        "Your refund of {amount} {currency} (order {order_id}) is on its way and takes up to "
        "{days} working days.",
    ],
    "refund_method": [
        "Refunds go back to the original payment method within {days} days.",
        "We send refunds to the payment method you used, within {days} days.",
        "Your money returns to the original payment method within {days} days.",
    ],
    "return_window": [
        "You can return the {item} within {days} days of delivery.",
        "The {item} can be returned up to {days} days after delivery.",
        "Returns of the {item} are accepted for {days} days from delivery.",
    ],
    "return_link": [
        "Start your return for order {order_id} at {url}.",
        "To return order {order_id}, please go to {url}.",
        "You can open a return for order {order_id} here: {url}.",
    ],
    "return_label": [
        "We emailed a return label for order {order_id}; please ship the {item} by {date}.",
        "A return label for order {order_id} is in your inbox. Please send the {item} back by "
        "{date}.",
        "Please use the return label we emailed for order {order_id} and ship the {item} by "
        "{date}.",
    ],
    "price": [
        "The {item} costs {amount} {currency}.",
        "The price of the {item} is {amount} {currency}.",
        "You can get the {item} for {amount} {currency}.",
    ],
    "price_shipping": [
        "The {item} is {amount} {currency} and ships within {days} days.",
        "The {item} costs {amount} {currency}; it ships within {days} days.",
        "For {amount} {currency} you get the {item}, shipped within {days} days.",
    ],
    "stock": [
        "We have {qty} of the {item} left in stock.",
        "Only {qty} of the {item} are left in stock.",
        "There are {qty} units of the {item} in stock right now.",
    ],
    "out_of_stock": [
        "The {item} is out of stock until {date}.",
        "The {item} is sold out; we expect new stock on {date}.",
        "We are out of the {item} until {date}.",
    ],
    "ticket": [
        "I opened ticket {ticket_id}; an agent will contact you between {hours}.",
        "Your ticket is {ticket_id}. An agent will reach out between {hours}.",
        "Ticket {ticket_id} is open, and an agent will get in touch between {hours}.",
    ],
    "ticket_status": [
        "Ticket {ticket_id} is still open and {name} is working on it.",
        "{name} is working on ticket {ticket_id}, which is still open.",
        "Your ticket {ticket_id} is open; {name} is handling it.",
    ],
    "agent_handoff": [
        "I'm connecting you to {name}, one of our agents.",
        "One moment, I'm passing you to our agent {name}.",
        "{name} from our team will take over the chat now.",
    ],
    "hours": [
        "Our service team is available between {hours} every day.",
        "You can reach our service team every day between {hours}.",
        "Our agents answer every day between {hours}.",
    ],
    "hotline": [
        "You can call our hotline at {phone} between {hours}.",
        "Our hotline {phone} is open between {hours}.",
        "Call us at {phone}, any day between {hours}.",
    ],
    "warranty": [
        "Your {item} has a {days}-month warranty, so order {order_id} is covered until {date}.",
        "The {item} from order {order_id} is under warranty until {date} ({days} months).",
        "Order {order_id} includes a {days}-month warranty on the {item}, valid until {date}.",
    ],
    "payment_received": [
        "We received your payment of {amount} {currency} for order {order_id}.",
        "Your payment of {amount} {currency} for order {order_id} has arrived.",
        "Payment received: {amount} {currency} for order {order_id}.",
    ],
    "payment_methods": [
        "{shop} accepts Alipay, WeChat Pay and credit cards.",
        "At {shop} you can pay with Alipay, WeChat Pay or a credit card.",
        "You can pay {shop} with Alipay, WeChat Pay or credit cards.",
    ],
    "coupon": [
        "Use code {code} for {percent}% off your next order.",
        "Your code {code} gives you {percent}% off the next order.",
        "Enter {code} at checkout to save {percent}% on your next order.",
    ],
    "points": [
        "You have {points} reward points, which expire on {date}.",
        "Your balance is {points} reward points, valid until {date}.",
        "There are {points} reward points in your account; they expire on {date}.",
    ],
    "address_change": [
        "I updated the delivery address for order {order_id}.",
        "The delivery address of order {order_id} has been updated.",
        "Done: order {order_id} will go to the new address.",
    ],
    "cancel": [
        "Order {order_id} has been cancelled, and {amount} {currency} will be refunded.",
        "I cancelled order {order_id}; you will get {amount} {currency} back.",
        "Your order {order_id} is cancelled and a refund of {amount} {currency} is on its way.",
    ],
    "cancel_too_late": [
        "Order {order_id} has already shipped, so it can no longer be cancelled.",
        "I'm afraid order {order_id} already shipped and cannot be cancelled now.",
        "Since order {order_id} is already on its way, it cannot be cancelled.",
    ],
    "tracking": [
        "You can track order {order_id} at {url}.",
        "Follow order {order_id} online at {url}.",
        "The tracking page for order {order_id} is {url}.",
    ],
    "invoice": [
        "The invoice for order {order_id} is ready at {url}.",
        "You can download the invoice of order {order_id} at {url}.",
        "Your invoice for order {order_id} is available here: {url}.",
    ],
    "exchange": [
        "We can exchange the {item} for another size within {days} days.",
        "The {item} can be exchanged for a different size within {days} days.",
        "You have {days} days to exchange the {item} for another size.",
    ],
    "damaged": [
        "Please send a photo of the damaged {item} so we can help with order {order_id}.",
        "Could you send us a photo of the damaged {item}? Then we can help with order {order_id}.",
        "To help with order {order_id}, we need a photo of the damaged {item}.",
    ],
    "free_shipping": [
        "Shipping is free on orders over {amount} {currency}.",
        "Orders above {amount} {currency} ship for free.",
        "We ship free of charge when your order is over {amount} {currency}.",
    ],
    "greet": [
        "Hello! I'm the {shop} assistant. What can I do for you?",
        "Hi, this is the {shop} assistant. How may I help?",
        "Welcome to {shop}! I'm the assistant here. What do you need today?",
    ],
    "goodbye": [
        "Thanks for visiting {shop}. Have a nice day!",
        "Thank you for shopping at {shop}. Goodbye!",
        "It was a pleasure to help. Goodbye from {shop}!",
    ],
    "anything_else": [
        "Is there anything else I can help you with?",
        "Can I help you with anything else?",
        "Anything else I can do for you today?",
    ],
    "verify": [
        "To continue, please tell me the email address you used for order {order_id}.",
        "Please share the email address used for order {order_id} so I can continue.",
        "I need the email address of order {order_id} before I can continue.",
    ],
    "pickup": [
        "Your {item} is ready for pickup until {date}.",
        "You can pick up your {item} until {date}.",
        "The {item} is waiting for you at the pickup point until {date}.",
    ],
    # Chinese replies (the shop answers in the customer's language)
    "zh_order_shipped": [
        "您的订单{order_id}已由{carrier}发出，预计{date}前送达。",
        "订单{order_id}已经交给{carrier}配送，预计{date}前到达。",
        "您的订单{order_id}正在由{carrier}运送，{date}前可以送到。",
    ],
    "zh_refund": [
        "订单{order_id}的退款{amount}元已提交，{days}个工作日内到账。",
        "我们已为订单{order_id}办理退款{amount}元，预计{days}个工作日内到账。",
        "退款{amount}元（订单{order_id}）已经发起，会在{days}个工作日内退回。",
    ],
    "zh_return": [
        "{item}可在签收后{days}天内申请退货。",
        "签收后{days}天内，{item}都可以申请退货。",
        "您可以在收到{item}后的{days}天内办理退货。",
    ],
    "zh_ticket": [
        "已为您创建工单{ticket_id}，客服会在{hours}之间联系您。",
        "您的工单号是{ticket_id}，客服将在{hours}之间与您联系。",
        "工单{ticket_id}已经建立，我们的客服会在{hours}之间给您回电。",
    ],
    "zh_price": [
        "{item}的价格是{amount}元。",
        "{item}售价{amount}元。",
        "这款{item}的价格为{amount}元。",
    ],
    "zh_delay": [
        "很抱歉，订单{order_id}延误了，新的送达日期是{date}。",
        "抱歉，订单{order_id}的配送有所延迟，预计{date}送达。",
        "订单{order_id}出现延误，非常抱歉，现在预计{date}到货。",
    ],
    "zh_anything_else": [
        "请问还有什么可以帮您？",
        "还有其他需要帮忙的吗？",
        "请问您还有别的问题吗？",
    ],
}
SOCIAL_FRAMES = {"greet", "goodbye", "anything_else"}
ZH_ITEMS = ["电饭煲", "蓝牙音箱", "保温杯", "运动鞋", "空气净化器", "吹风机", "充电宝"]
ZH_CARRIERS = ["顺丰速运", "京东物流", "中国邮政"]

# friendly openings (repeats weight the choice: a steady habit the model can learn)
OPENERS_EN = [
    "Sure!", "Sure!", "Sure!", "Of course.", "Of course.", "Thanks for waiting.",
    "Thanks for your patience.", "Happy to help!", "Certainly.", "Here's what I found:",
]  # fmt: skip
OPENERS_ZH = ["好的，", "好的，", "您好，", "感谢您的耐心等待，", "没问题，", "为您查询到："]
APOLOGIES_EN = [
    "I'm really sorry for the trouble.",
    "I understand how frustrating this is, and I apologise.",
    "Sorry about this, I know it's annoying.",
    "I'm sorry you had to deal with this.",
]
APOLOGIES_ZH = ["非常抱歉给您带来不便。", "理解您的心情，真的很抱歉。"]
# word swaps that never touch a fact (applied to whole words, case kept)
SYNONYMS = {
    "should": "will likely", "arrive": "get to you", "within": "in", "issued": "sent",
    "contact": "get in touch with", "please": "kindly", "Please": "Kindly",
    "right now": "at the moment", "still": "currently", "help": "assist",
}  # fmt: skip
GREETINGS = [
    "hello", "hi there", "hey, I need some help", "good morning", "hi, quick question",
    "你好", "在吗", "您好，我想咨询一下",
]  # fmt: skip


@dataclass
class Example:
    """One chat-format training example."""

    task: str  # rephrase | grounded | conversation
    source: str  # frame / dataset the example came from
    group: str  # split key: examples of one group are all train or all eval
    messages: list[dict[str, str]]

    def to_json(self) -> str:
        """One JSONL line."""
        return json.dumps(asdict(self), ensure_ascii=False)


def _fill(text: str, values: dict[str, str]) -> str:
    return text.format(**values)


def _zh_values(values: dict[str, str], rng: random.Random) -> dict[str, str]:
    month, day = rng.randint(1, 8), rng.randint(1, 28)
    start = rng.choice([8, 9])
    return {
        **values,
        "item": rng.choice(ZH_ITEMS),
        "carrier": rng.choice(ZH_CARRIERS),
        "date": f"{month}月{day}日",
        "hours": f"{start}:00到{rng.choice([18, 20, 21])}:00",
    }


def _swap_synonyms(text: str, rng: random.Random) -> str:
    words = list(SYNONYMS.items())
    rng.shuffle(words)
    for old, new in words[:2]:
        text = re.sub(rf"\b{re.escape(old)}\b", new, text, count=1)
    return text


def _variant(text: str, language: str, tone: str, rng: random.Random, opener: float = 0.9) -> str:
    """``text`` with a friendly (for an upset customer: apologetic) opening.

    Sometimes a word or two are swapped; the opening is left out with probability
    ``1 - opener`` (never for an upset customer).
    """
    zh = language == "zh"
    if not zh and rng.random() < 0.3:
        text = _swap_synonyms(text, rng)
    if tone == "empathetic":
        opening = rng.choice(APOLOGIES_ZH if zh else APOLOGIES_EN)
    elif rng.random() < opener:
        opening = rng.choice(OPENERS_ZH if zh else OPENERS_EN)
    else:
        return text
    return opening + text if zh else f"{opening} {text}"


def _history(rng: random.Random, customers: Sequence[str]) -> list[tuple[str, str]]:
    turns = rng.choice([0, 1, 1, 2, 3])
    history = []
    for i in range(turns):
        pool = GREETINGS if i == 0 and rng.random() < 0.5 else customers
        history.append(("Customer", rng.choice(pool)))
    return history


def _rephrase_example(
    template: str,
    target: str,
    protected: Iterable[str],
    tone: str,
    history: list[tuple[str, str]],
    source: str,
    group: str,
) -> Example | None:
    if target.strip() == template.strip() or check_rephrase(template, target, list(protected)):
        return None
    messages = rephrase_messages(template, history, tone)
    return Example("rephrase", source, group, [*messages, {"role": "assistant", "content": target}])


def frame_examples(count: int, seed: int, customers: Sequence[str]) -> Iterator[Example]:
    """``count`` rephrase examples from :data:`FRAMES` (fewer if too many fail the checks)."""
    rng = random.Random(seed)
    names = sorted(FRAMES)
    made = attempts = 0
    while made < count and attempts < count * 5:
        attempts += 1
        frame = names[attempts % len(names)]
        wordings = FRAMES[frame]
        values = slot_values(rng)
        language = "zh" if frame.startswith("zh_") else "en"
        if language == "zh":
            values = _zh_values(values, rng)
        tone = "empathetic" if rng.random() < 0.2 else "neutral"
        i = rng.randrange(len(wordings))
        template = _fill(wordings[i], values)
        # the body: another wording of the same reply, or the template itself
        others = [k for k in range(len(wordings)) if k != i]
        body = _fill(wordings[rng.choice(others)], values) if rng.random() < 0.5 else template
        # social replies (greetings, goodbyes) are reworded rather than given an opening
        social = frame.removeprefix("zh_") in SOCIAL_FRAMES
        target = _variant(body, language, tone, rng, opener=0.3 if social else 0.9)
        if target == template:
            target = _fill(wordings[rng.choice(others)], values)
        history = _history(rng, customers)
        example = _rephrase_example(
            template, target, values.values(), tone, history, f"frame:{frame}", frame
        )
        if example is not None:
            made += 1
            yield example


def domain_examples(domain_file: Path, seed: int, customers: Sequence[str]) -> Iterator[Example]:
    """The domain's own text responses as templates (one example per variation)."""
    import yaml

    rng = random.Random(seed)
    responses = (yaml.safe_load(domain_file.read_text(encoding="utf-8")) or {}).get("responses", {})
    for name, variations in sorted(responses.items()):
        for variation in variations or []:
            text = (variation or {}).get("text")
            if not text or "{" in text:  # slot placeholders are filled at run time
                continue
            language = language_of(text)
            tone = "empathetic" if rng.random() < 0.1 else "neutral"
            target = _variant(text, language, tone, rng)
            example = _rephrase_example(
                text, target, (), tone, _history(rng, customers), f"domain:{name}", name
            )
            if example is not None:
                yield example


def stackfaq_paraphrases(datasets: Path, limit: int, seed: int) -> Iterator[Example]:
    """Pairs of visible StackFAQ queries of one thread that pass the fact checks."""
    rng = random.Random(seed)
    by_thread: dict[str, list[str]] = {}
    for row in _jsonl(datasets / "stackfaq" / "queries.jsonl"):
        by_thread.setdefault(row["faq_id"], []).append(row["query"].strip())
    pairs = []
    for thread, queries in sorted(by_thread.items()):
        for a in queries:
            for b in queries:
                if a != b and len(a) > 15:
                    pairs.append((thread, a, b))
    rng.shuffle(pairs)
    made = 0
    for thread, a, b in pairs:
        if made >= limit:
            return
        if language_of(a) != "en":
            continue
        example = _rephrase_example(a, b, (), "neutral", [], "stackfaq_paraphrase", thread)
        if example is not None:
            made += 1
            yield example


# --------------------------------------------------------------------------- grounded answers
_SPACES = re.compile(r"\s+")


def _passages(text: str, max_chars: int) -> list[str]:
    """Sentence-aligned chunks of at most ``max_chars`` characters."""
    chunks, current = [], ""
    for sentence in sentences(_SPACES.sub(" ", text)):
        if len(sentence) > max_chars:
            continue
        joined = f"{current} {sentence}".strip() if current else sentence
        if len(joined) > max_chars and current:
            chunks.append(current)
            current = sentence
        else:
            current = joined
    if current:
        chunks.append(current)
    return [c for c in chunks if len(c) >= 40 or (c and not c.isascii() and len(c) >= 15)]


def _best_sentence(question: str, passage: str) -> str | None:
    from knowledge.answering import content_words

    wanted = content_words(question)
    candidates = [s for s in sentences(passage) if 20 <= len(s) <= 220 and "[" not in s]
    if not candidates:
        return None
    best = max(
        range(len(candidates)), key=lambda i: (len(wanted & content_words(candidates[i])), -i)
    )
    return candidates[best]


def _grounded(
    question: str,
    gold: str | None,
    distractors: list[str],
    rng: random.Random,
    source: str,
    group: str,
    sentence: str | None = None,
) -> Example | None:
    """A grounded example; the answer is ``sentence`` (default: the best one of ``gold``)."""
    from knowledge.answering import AnswerComposer, grounded_messages

    shown = list(distractors)
    if gold is None:
        answer = DECLINE
    else:
        position = rng.randrange(len(shown) + 1)
        shown.insert(position, gold)
        sentence = sentence or _best_sentence(question, gold)
        if sentence is None:
            return None
        answer = f"{sentence} [{position + 1}]"
        _, reason = AnswerComposer().check(answer, shown)
        if reason:
            return None
    return Example(
        "grounded",
        source,
        group,
        [*grounded_messages(question, shown), {"role": "assistant", "content": answer}],
    )


def stackfaq_grounded(
    datasets: Path, count: int, seed: int, shop_passages: Sequence[str], unanswerable: float
) -> Iterator[Example]:
    """Grounded examples from visible StackFAQ queries (a share of them unanswerable)."""
    rng = random.Random(seed)
    threads = {row["faq_id"]: row for row in _jsonl(datasets / "stackfaq" / "faq.jsonl")}
    chunks = {
        tid: [p for answer in row["answers"][:2] for p in _passages(answer, 260)]
        for tid, row in threads.items()
    }
    queries = [
        r for r in _jsonl(datasets / "stackfaq" / "queries.jsonl") if chunks.get(r["faq_id"])
    ]
    rng.shuffle(queries)
    others = sorted(chunks)
    made = 0
    for row in queries:
        if made >= count:
            return
        thread = row["faq_id"]
        pool = [t for t in others if t != thread and chunks[t]]
        distractors = [rng.choice(chunks[t]) for t in rng.sample(pool, 2)]
        if shop_passages and rng.random() < 0.3:
            distractors[0] = rng.choice(shop_passages)
        if rng.random() < unanswerable:
            distractors.append(rng.choice(chunks[rng.choice(pool)]))
            example = _grounded(row["query"], None, distractors, rng, "stackfaq", thread)
        else:
            gold = chunks[thread][0]
            example = _grounded(row["query"], gold, distractors, rng, "stackfaq", thread)
        if example is not None:
            made += 1
            yield example


def medical_grounded(
    datasets: Path, count: int, seed: int, unanswerable: float
) -> Iterator[Example]:
    """Chinese grounded examples from ``medical_qa`` (title as the question)."""
    rng = random.Random(seed)
    rows = [r for r in _jsonl(datasets / "medical_qa" / "qa.jsonl") if r.get("answer")]
    rng.shuffle(rows)
    rows = rows[: count * 3]
    chunks = [_passages(r["answer"], 110)[:1] for r in rows]
    made = 0
    for i, row in enumerate(rows):
        if made >= count:
            return
        if not chunks[i]:
            continue
        others = [c[0] for j, c in enumerate(chunks) if c and j != i]
        distractors = rng.sample(others, 2)
        if rng.random() < unanswerable:
            distractors.append(rng.choice(others))
            example = _grounded(row["title"], None, distractors, rng, "medical_qa", f"med{i}")
        else:
            example = _grounded(
                row["title"], chunks[i][0], distractors, rng, "medical_qa", f"med{i}"
            )
        if example is not None:
            made += 1
            yield example


# --------------------------------------------------------------------------- synthetic policies
# Other businesses' policy facts (not the demo shop's documents, which the benchmark asks about):
# (fact sentence, questions it answers). Passages join facts of one topic; a question whose fact
# was left out of every shown passage is a near-domain question the passages do not answer.
POLICIES: dict[str, list[tuple[str, list[str]]]] = {
    "membership": [
        (
            "Gold membership costs {amount} {currency} per year and includes free express "
            "delivery.",
            ["How much is Gold membership?", "What does the Gold membership cost per year?"],
        ),
        (
            "Members earn {qty} points for every {currency} they spend.",
            ["How many points do members earn?", "How do I collect points as a member?"],
        ),
        (
            "Membership can be cancelled at any time in the account settings.",
            ["Can I cancel my membership?", "How do I end my membership?"],
        ),
    ],
    "gift_cards": [
        (
            "Gift cards are valid for {days} months from the date of purchase.",
            ["How long is a gift card valid?", "Do gift cards expire?"],
        ),
        (
            "Gift cards cannot be exchanged for cash.",
            ["Can I get cash for my gift card?", "Can a gift card be turned into money?"],
        ),
        (
            "A lost gift card can be blocked by calling {phone}.",
            ["What do I do if I lose my gift card?", "How can I block a lost gift card?"],
        ),
    ],
    "repairs": [
        (
            "Repairs at our service centre take about {days} working days.",
            ["How long does a repair take?", "When will my repaired device be ready?"],
        ),
        (
            "A repair estimate is free, and you only pay once you accept it.",
            ["Do I pay for a repair estimate?", "Is the repair quote free?"],
        ),
        (
            "Out-of-warranty screen repairs cost {amount} {currency}.",
            ["How much does a screen repair cost?", "What is the price of fixing a broken screen?"],
        ),
    ],
    "pickup": [
        (
            "Orders can be collected from a pickup point {days} days after you get the pickup "
            "code.",
            ["When can I collect my order?", "How soon can I pick up my parcel?"],
        ),
        (
            "Pickup points keep a parcel for {qty} days before it is sent back.",
            [
                "How long does the pickup point keep my parcel?",
                "How many days do I have to collect a parcel?",
            ],
        ),
        (
            "You need the pickup code and an ID card to collect a parcel.",
            ["What do I need to collect my parcel?", "Do I need ID to pick up a parcel?"],
        ),
    ],
    "price_match": [
        (
            "If you find the same item cheaper within {days} days, we refund the difference.",
            ["Do you match lower prices?", "What if I find the item cheaper elsewhere?"],
        ),
        (
            "Price matching does not apply to flash sales or second-hand items.",
            [
                "Does price matching work for flash sales?",
                "Which items are excluded from price matching?",
            ],
        ),
    ],
    "installation": [
        (
            "Installation of large appliances costs {amount} {currency} and is booked at checkout.",
            ["How much does installation cost?", "Can you install my washing machine?"],
        ),
        (
            "Installers arrive between {hours} on the agreed day.",
            ["What time does the installer come?", "When will the technician arrive?"],
        ),
    ],
    "account": [
        (
            "Passwords can be reset from the login page with the code we send by text message.",
            ["How do I reset my password?", "I forgot my password, what now?"],
        ),
        (
            "After {qty} wrong passwords the account is locked for 30 minutes.",
            ["Why is my account locked?", "What happens after too many wrong passwords?"],
        ),
        (
            "Accounts can be deleted by writing to our privacy team from the settings page.",
            ["How do I delete my account?", "Can I remove my account completely?"],
        ),
    ],
    "wallet": [
        (
            "Top-ups to the wallet arrive instantly and have no fee.",
            ["Is there a fee to top up my wallet?", "How fast does a wallet top-up arrive?"],
        ),
        (
            "Withdrawals from the wallet to a bank card take up to {days} working days.",
            [
                "How long does a withdrawal take?",
                "When will money from my wallet reach my bank card?",
            ],
        ),
        (
            "The wallet balance cannot exceed {amount} {currency}.",
            ["Is there a limit on the wallet balance?", "What is the maximum wallet balance?"],
        ),
    ],
    "appointments": [
        (
            "Clinic appointments can be booked online up to {days} days in advance.",
            ["How far ahead can I book an appointment?", "Can I book a doctor's visit next month?"],
        ),
        (
            "Appointments cancelled less than {qty} hours before are charged a fee.",
            [
                "Is there a fee for cancelling an appointment?",
                "What if I cancel my appointment late?",
            ],
        ),
        (
            "Please arrive 15 minutes early and bring your insurance card.",
            ["What should I bring to my appointment?", "How early should I arrive?"],
        ),
    ],
    "prescriptions": [
        (
            "Prescription refills are ready for pickup within {days} working days.",
            ["How long does a prescription refill take?", "When can I pick up my refill?"],
        ),
        (
            "Prescription medicines cannot be returned once they leave the pharmacy.",
            ["Can I return prescription medicine?", "Can I give back medicine I don't need?"],
        ),
    ],
    "insurance": [
        (
            "Device insurance costs {amount} {currency} per month and covers accidental damage.",
            ["How much is device insurance?", "Does the insurance cover accidental damage?"],
        ),
        (
            "Insurance claims must be filed within {days} days of the damage.",
            ["How long do I have to make an insurance claim?", "Is there a deadline for claims?"],
        ),
    ],
    "subscriptions": [
        (
            "Coffee subscriptions ship every {qty} weeks and can be paused at any time.",
            ["How often does the subscription ship?", "Can I pause my coffee subscription?"],
        ),
        (
            "The first box of a subscription is {percent}% off.",
            ["Is there a discount on the first box?", "Do new subscribers get a discount?"],
        ),
    ],
    "invoices": [
        (
            "Company invoices with a tax number can be requested within {days} days of delivery.",
            [
                "Can I get an invoice with my company's tax number?",
                "How long can I ask for a company invoice?",
            ],
        ),
        (
            "Invoices are sent as PDF files to the email address of the account.",
            ["How do I receive my invoice?", "Where is my invoice sent?"],
        ),
    ],
    "trade_in": [
        (
            "Old phones can be traded in at any store for up to {amount} {currency} of credit.",
            ["Can I trade in my old phone?", "How much credit do I get for an old phone?"],
        ),
        (
            "Traded-in devices must switch on and have no activation lock.",
            [
                "What condition must a trade-in phone be in?",
                "Do you accept phones that don't turn on?",
            ],
        ),
    ],
}


def policy_grounded(
    count: int, seed: int, others: Sequence[str], unanswerable: float
) -> Iterator[Example]:
    """Grounded examples over :data:`POLICIES` (synthetic passages with generated values).

    Answerable: the question's fact is in one passage among distractors. Unanswerable: the
    question's topic is shown without its fact (near-domain), or not at all.
    """
    rng = random.Random(seed)
    topics = sorted(POLICIES)
    made = attempts = 0
    while made < count and attempts < count * 4:
        attempts += 1
        topic = topics[attempts % len(topics)]
        values = slot_values(rng)
        facts = [(_fill(f, values), qs) for f, qs in POLICIES[topic]]
        asked = rng.randrange(len(facts))
        question = rng.choice(facts[asked][1])
        other_topic = rng.choice([t for t in topics if t != topic])
        other_values = slot_values(rng)
        distractors = [" ".join(_fill(f, other_values) for f, _ in POLICIES[other_topic])]
        distractors.append(rng.choice(others) if others else distractors[0])
        if rng.random() < unanswerable:
            rest = [f for i, (f, _) in enumerate(facts) if i != asked]
            shown = [" ".join(rest)] if rest and rng.random() < 0.6 else []
            example = _grounded(question, None, distractors + shown, rng, "policy", topic)
        else:
            order = list(range(len(facts)))
            rng.shuffle(order)
            gold = " ".join(facts[i][0] for i in order)
            example = _grounded(question, gold, distractors, rng, "policy", topic, facts[asked][0])
        if example is not None:
            made += 1
            yield example


# --------------------------------------------------------------------------- whole sets
def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _customers(datasets: Path, limit: int, seed: int) -> list[str]:
    import csv

    rng = random.Random(seed)
    texts: list[str] = []
    for name in ("banking77/train.csv", "clinc150/train.csv"):
        path = datasets / name
        if path.is_file():
            with path.open(encoding="utf-8") as handle:
                texts += [row["text"] for row in csv.DictReader(handle) if row.get("text")]
    rng.shuffle(texts)
    return texts[:limit] or list(GREETINGS)


def shop_passages(docs: Path) -> list[str]:
    """Passages of the shop's own documents (used only as distractors, never as answers)."""
    out = []
    for path in sorted(docs.glob("*.md")):
        out += _passages(path.read_text(encoding="utf-8").replace("#", " "), 260)
    return out


def required_files(datasets: Path) -> list[Path]:
    """Dataset files the builder reads."""
    return [
        datasets / "stackfaq" / "faq.jsonl",
        datasets / "stackfaq" / "queries.jsonl",
        datasets / "medical_qa" / "qa.jsonl",
        datasets / "banking77" / "train.csv",
    ]


def build(
    datasets: Path,
    rephrase: int,
    grounded: int,
    seed: int,
    eval_share: float = 0.08,
    zh_grounded_share: float = 0.12,
    policy_share: float = 0.45,
    unanswerable: float = 0.25,
    progress: bool = True,
) -> dict[str, list[Example]]:
    """Build the train/eval examples of both tasks.

    Args:
        datasets: The public datasets folder.
        rephrase: Rephrase examples wanted (frames ~85 %, StackFAQ paraphrases ~8 %, domain
            responses the rest).
        grounded: Grounded examples wanted (``zh_grounded_share`` of them Chinese,
            ``policy_share`` over :data:`POLICIES`, the rest StackFAQ).
        seed: Everything random derives from it.
        eval_share: Share of groups (frames, threads) held back for evaluation.
        zh_grounded_share: Share of grounded examples from Chinese medical Q&A.
        policy_share: Share of grounded examples over the synthetic policies.
        unanswerable: Share of grounded examples whose passages do not answer.
        progress: Show a progress bar on stderr.

    Returns:
        ``{"train": [...], "eval": [...]}``.
    """
    from tqdm import tqdm

    customers = _customers(datasets, 4000, seed)
    shop = Assistant("shop")  # the shipped adapter is tuned on the shop's domain and documents
    docs = shop_passages(shop.docs)
    domain = list(domain_examples(shop.domain, seed, customers))
    paraphrases = max(0, int(rephrase * 0.08))
    frames = max(0, rephrase - paraphrases - len(domain))
    zh = int(grounded * zh_grounded_share)
    policy = int(grounded * policy_share)
    rest = grounded - zh - policy
    parts = [
        ("frames", frames, lambda: frame_examples(frames, seed, customers)),
        ("paraphrases", paraphrases, lambda: stackfaq_paraphrases(datasets, paraphrases, seed)),
        ("policies", policy, lambda: policy_grounded(policy, seed, docs, unanswerable)),
        ("grounded", rest, lambda: stackfaq_grounded(datasets, rest, seed, docs, unanswerable)),
        ("grounded zh", zh, lambda: medical_grounded(datasets, zh, seed, unanswerable)),
    ]
    examples = list(domain)
    bar = tqdm(total=len(domain) + sum(n for _, n, _ in parts), desc="examples", unit=" ex",
               disable=not progress, file=sys.stderr)  # fmt: skip
    bar.update(len(domain))
    for label, _, make in parts:
        bar.set_postfix_str(label)
        for example in make():
            examples.append(example)
            bar.update(1)
    bar.close()
    rng = random.Random(seed)
    groups = sorted({(e.task, e.group) for e in examples})
    held = {g for g in groups if rng.random() < eval_share}
    split: dict[str, list[Example]] = {"train": [], "eval": []}
    for example in examples:
        split["eval" if (example.task, example.group) in held else "train"].append(example)
    for part in split.values():
        rng.shuffle(part)
    return split


def write(split: dict[str, list[Example]], out: Path) -> dict[str, dict[str, int]]:
    """Write ``train.jsonl``/``eval.jsonl`` under ``out``; returns counts per split and task."""
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    for name, examples in split.items():
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for example in examples:
                handle.write(example.to_json() + "\n")
                counts.setdefault(name, {}).setdefault(example.task, 0)
                counts[name][example.task] += 1
    return counts


def read(path: Path) -> list[Example]:
    """Examples from a JSONL file written by :func:`write` or the conversation export."""
    return [Example(**row) for row in _jsonl(path)]


def template_bank() -> list[str]:
    """Every wording the rephrase builder fills (for :func:`assert_disjoint`)."""
    return [w for wordings in FRAMES.values() for w in wordings]


_BENCH_VALUE = re.compile(r"KF\d{6}(?!\d)|2026-12-\d\d|\b\d+\.(?:00|50|99)\b|\bT-\d{4}(?!\d)")


def assert_disjoint(templates: Iterable[str], items: Iterable[str], examples: int = 400) -> None:
    """Fail when a benchmark template or slot value could appear in the training data.

    Args:
        templates: The benchmark's templates (with ``{slot}`` placeholders).
        items: The benchmark's item names.
        examples: Generated frame examples scanned for values of the benchmark's forms.

    Raises:
        AssertionError: Naming the overlap.
    """
    bank = {_SPACES.sub(" ", w) for w in template_bank()}
    same = [t for t in templates if _SPACES.sub(" ", t) in bank]
    if same:  # raised, not asserted: the check must also hold under python -O
        raise AssertionError(f"benchmark templates in the training frames: {same}")
    shared = set(items) & (set(ITEMS) | set(ZH_ITEMS))
    if shared:
        raise AssertionError(f"benchmark items in the training values: {sorted(shared)}")
    for example in frame_examples(examples, 0, ["hello"]):
        match = _BENCH_VALUE.search(" ".join(m["content"] for m in example.messages))
        if match is not None:
            raise AssertionError(f"a benchmark-form value in the training data: {match.group(0)}")
