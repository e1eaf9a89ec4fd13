"""LLM benchmark: backend speed (tokens/s, time to first token) and the NLG over 200 rephrasings.

    .venv/bin/python benchmarks/llm.py --json benchmarks/results/llm.json
    .venv/bin/python benchmarks/llm.py --parts nlg --requests 50 --backend openai \
        --base-url http://127.0.0.1:8008/v1

``speed``: the same chat prompts through every backend available here (transformers in fp32 and
as Kefu runs it by default, int8; llama.cpp when llama-cpp-python is installed), greedy, 64 new
tokens. Time to first token is taken inside each call (streamed for llama.cpp, a per-step hook
for transformers); decode rate = the other tokens over the rest of the call; tokens/s = new
tokens over the whole call. llama.cpp reuses the KV cache of a shared prompt prefix between
calls (part of what it is measured for).

``nlg``: ``RephrasingNLG.generate`` exactly as Rasa calls it, over fact-heavy templates (order ids,
dates, prices, URLs, ticket numbers, opening hours) with different slot values: share of replies
rephrased, share falling back to the template per reason, p50/p95 latency, and a re-check that
every fact of the template is in every reply that went out.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import re
import sys
import time

from common import offline_env, percentile, table, write_json

offline_env()

from components.llm import LLMClient, create_client  # noqa: E402
from components.llm.base import LLMBackend  # noqa: E402

PROMPTS = [
    "Rewrite this reply in a friendly tone: Your order KF100234 ships by 2026-11-30.",
    "Rewrite this reply in a friendly tone: Refunds are issued within 3 working days.",
    "Say hello to a customer of an online shop in one sentence.",
    "Rewrite this reply politely: Please send a photo of the damaged item.",
    "Rewrite this reply in a warm tone: A human agent will contact you shortly.",
]

TEMPLATES = {
    "utter_order_status": "Order {order_id} is on its way and should arrive by {date}.",
    "utter_refund": "Your {amount} CNY refund for order {order_id} arrives within 3 working days.",
    "utter_handoff": "I created ticket {ticket_id}; an agent will call you between 9:00 and 21:00.",
    "utter_return": "Return order {order_id} until {date} at https://shop.example/returns.",
    "utter_greet": "Hello! I'm the Demo Shop assistant. How can I help you today?",
    "utter_price": "The {item} costs {amount} CNY and ships within 2 days.",
    "utter_warranty": "Your {item} has a 12-month warranty: order {order_id} is covered to {date}.",
    "utter_payment": "We accept Alipay, WeChat Pay and cards. We received your {amount} CNY.",
    "utter_delay": "Sorry, order {order_id} is delayed. The new delivery date is {date}.",
    "utter_goodbye": "Thank you for shopping with Demo Shop. Goodbye!",
}
ITEMS = ["smart watch", "phone case", "tea set", "backpack", "desk lamp", "headphones"]
# Chinese replies (no target: what a 135M model can do in Chinese; see benchmarks/README.md)
TEMPLATES_ZH = {
    "utter_order_status": "订单{order_id}正在路上，预计{date}送达。",
    "utter_refund": "订单{order_id}的{amount}元退款将在3个工作日内到账。",
    "utter_handoff": "已创建工单{ticket_id}，人工客服会在9:00到21:00之间联系您。",
    "utter_price": "{item}的售价是{amount}元，2天内发货。",
    "utter_goodbye": "感谢您在演示商店购物，再见！",
}
ITEMS_ZH = ["智能手表", "手机壳", "茶具", "背包", "台灯", "耳机"]


def available_backends(threads: int | None = None) -> list[tuple[str, LLMBackend]]:
    """Backends that run here, by benchmark name (``threads``: CPU threads of each)."""
    base = {"timeout": 120, "threads": threads}
    configs = [
        ("transformers fp32 generate()", {"quantize": "none", "decoder": "generate"}),
        ("transformers int8 generate()", {"decoder": "generate"}),
        ("transformers int8 lean decoder (Kefu default)", {}),
    ]
    if importlib.util.find_spec("llama_cpp") is not None:
        configs.append(("llama.cpp", {"backend": "llamacpp"}))
    return [(name, create_client({**base, **extra}).backend) for name, extra in configs]


def speed(rounds: int = 2, new_tokens: int = 64, threads: int | None = None) -> dict:
    """TTFT, decode rate and tokens/s per backend on the same prompts."""
    out = {}
    for name, backend in available_backends(threads):
        print(f"[bench] speed: {name} ...", file=sys.stderr, flush=True)
        client = LLMClient(backend, timeout_s=120)
        client.warm_up()
        ttft, decode, overall = [], [], []
        for _ in range(rounds):
            for prompt in PROMPTS:
                gen = client.generate(
                    [{"role": "user", "content": prompt}], max_new_tokens=new_tokens
                )
                first = gen.extra.get("first_token_s") or gen.latency_s
                ttft.append(first)
                overall.append(gen.new_tokens / gen.latency_s)
                if gen.new_tokens > 1 and gen.latency_s > first:
                    decode.append((gen.new_tokens - 1) / (gen.latency_s - first))
        out[name] = {
            "ttft_ms_p50": round(percentile(ttft, 50) * 1000, 1),
            "decode_tokens_per_s": round(percentile(decode, 50), 1),
            "tokens_per_s": round(percentile(overall, 50), 1),
            "prompts": len(ttft),
        }
    return out


def reuse(new_tokens: int = 32, batch: int = 4) -> dict:
    """Kefu default backend: prefix cache on/off (TTFT with the NLG's system prompt) and a
    batch of chats in one decode vs one at a time (total tokens/s)."""
    from components.llm.transformers_backend import TransformersBackend
    from components.nlg.prompt import SYSTEM_PROMPT

    chats = [
        [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": p}]
        for p in PROMPTS
    ]
    out: dict = {}
    for label, size in (("prefix cache off", 0), ("prefix cache on (default)", 8)):
        print(f"[bench] reuse: {label} ...", file=sys.stderr, flush=True)
        backend = TransformersBackend(prefix_cache=size)
        backend.warm_up()
        ttft, latency = [], []
        for _ in range(2):
            for chat in chats:
                gen = backend.generate(chat, max_new_tokens=new_tokens)
                ttft.append(gen.extra.get("first_token_s") or gen.latency_s)
                latency.append(gen.latency_s)
        out[label] = {
            "ttft_ms_p50": round(percentile(ttft, 50) * 1000, 1),
            "latency_ms_p50": round(percentile(latency, 50) * 1000, 1),
            "prompt_tokens": gen.extra["prompt_tokens"],
            "cached_prefix_tokens": gen.extra["cached_prefix_tokens"],
        }
    backend = TransformersBackend(prefix_cache=0)
    backend.warm_up()
    group = chats[:batch]
    for label, run in (
        ("one at a time", lambda: [backend.generate(c, max_new_tokens=new_tokens) for c in group]),
        (f"batch of {batch}", lambda: backend.generate_batch(group, max_new_tokens=new_tokens)),
    ):
        print(f"[bench] reuse: {label} ...", file=sys.stderr, flush=True)
        best = None
        for _ in range(2):
            started = time.perf_counter()
            gens = run()
            elapsed = time.perf_counter() - started
            rate = sum(g.new_tokens for g in gens) / elapsed
            best = max(best or 0.0, rate)
        out[label] = {"total_tokens_per_s": round(best, 1), "chats": len(group)}
    return out


def _fill(template: str, rng: random.Random, items: list[str] = ITEMS) -> tuple[str, dict]:
    slots = {
        "order_id": f"KF{rng.randint(100000, 999999)}",
        "date": f"2026-12-{rng.randint(1, 28):02d}",
        "amount": f"{rng.randint(20, 3000)}.{rng.choice(['00', '50', '99'])}",
        "ticket_id": f"T-{rng.randint(1000, 9999)}",
        "item": rng.choice(items),
    }
    return template.format(**slots), slots


def _facts(text: str) -> list[str]:
    return re.findall(r"https?://\S+|KF\d{6}|T-\d{4}|\d+(?:[.:,-]\d+)*", text)


def _shape(text: str, slots: dict) -> str:
    """A reply with its slot values replaced by their names (to count distinct wordings)."""
    for key, value in sorted(slots.items(), key=lambda kv: -len(kv[1])):
        text = text.replace(value, "{" + key + "}")
    return text


def nlg(
    requests: int,
    llm_config: dict,
    seed: int = 3,
    templates: dict[str, str] = TEMPLATES,
    items: list[str] = ITEMS,
    temperature: float = 0.0,
) -> dict:
    """Run ``requests`` rephrasings through the real RephrasingNLG.

    The templates and slot values are held out from the fine-tuning data
    (:func:`training.llm.data.assert_disjoint`, checked by ``main``).
    """
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    from components.nlg.rephrasing import RephrasingNLG

    rng = random.Random(seed)
    names = list(templates)
    cases = []
    for i in range(requests):
        action = names[i % len(names)]
        text, slots = _fill(templates[action], rng, items)
        cases.append((action, text, slots))
    endpoint = EndpointConfig(
        type="components.nlg.rephrasing.RephrasingNLG",
        warm_up=False,
        llm=llm_config,
        timeout=2.0,
        temperature=temperature,
    )
    client = create_client(llm_config)
    client.warm_up()
    reasons: dict[str, int] = {}
    latencies, kept_facts, outputs, different = [], 0, 0, 0
    wordings: dict[str, set[str]] = {}
    for n, (action, text, slots) in enumerate(cases, start=1):
        domain = Domain.from_dict(
            {
                "slots": {k: {"type": "text", "mappings": [{"type": "custom"}]} for k in slots},
                "responses": {action: [{"text": text, "metadata": {"rephrase": True}}]},
            }
        )
        generator = RephrasingNLG(endpoint, domain)
        generator._client = client  # loaded once, as in a running server
        tracker = DialogueStateTracker.from_events(
            f"bench-{n}",
            [UserUttered("hi, can you help me?"), *(SlotSet(k, v) for k, v in slots.items())],
            slots=domain.slots,
        )
        started = time.perf_counter()
        reply = asyncio.run(generator.generate(action, tracker, "rest"))
        latencies.append(time.perf_counter() - started)
        reason = reply["metadata"]["kefu_nlg"]["reason"]
        key = reason.split(":")[0] if reason.startswith("check_failed") else reason
        if reason.startswith("check_failed"):
            for part in reason.split(":", 1)[1].split(","):
                reasons[f"check_failed:{part}"] = reasons.get(f"check_failed:{part}", 0) + 1
        reasons[key] = reasons.get(key, 0) + 1
        outputs += 1
        kept_facts += all(f in reply["text"] for f in _facts(text))
        if reason == "ok" and reply["text"].strip() != text.strip():
            different += 1
            wordings.setdefault(action, set()).add(_shape(reply["text"], slots))
        if n % 20 == 0:
            print(f"[bench] nlg {n}/{len(cases)}", file=sys.stderr, flush=True)
    total = len(cases)
    return {
        "requests": total,
        "backend": llm_config.get("backend", "transformers")
        + (f" {llm_config['quantize']}" if "quantize" in llm_config else ""),
        "adapter": llm_config.get("adapter", "auto"),
        "temperature": temperature,
        "rephrased": reasons.get("ok", 0) / total,
        # accepted by every check and not just the template again
        "accepted_and_different": different / total,
        # distinct accepted wordings per template (slot values ignored), mean over templates
        "distinct_rephrasings_per_template": round(
            sum(len(wordings.get(a, ())) for a in names) / len(names), 2
        ),
        "reasons": {k: v / total for k, v in sorted(reasons.items())},
        "latency_s_p50": round(percentile(latencies, 50), 3),
        "latency_s_p95": round(percentile(latencies, 95), 3),
        "replies_keeping_every_fact": kept_facts / outputs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="speed,reuse,nlg", help="speed, reuse, nlg")
    parser.add_argument("--requests", type=int, default=200, help="NLG rephrase requests")
    parser.add_argument("--backend", default="transformers", help="NLG backend")
    parser.add_argument("--base-url", default=None, help="NLG openai backend: server URL")
    parser.add_argument("--quantize", default="int8", help="NLG transformers backend: int8|none")
    parser.add_argument("--threads", type=int, default=None, help="speed: CPU threads per backend")
    parser.add_argument("--no-zh", action="store_true", help="NLG: skip the Chinese templates")
    parser.add_argument(
        "--temperature", type=float, default=0.0, help="NLG: sampling temperature (0 = greedy)"
    )
    parser.add_argument(
        "--sampled", type=float, default=0.0, help="NLG: also the tuned model at this temperature"
    )
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    if args.requests < 1:
        print("error: --requests must be at least 1", file=sys.stderr)
        return 2
    if args.backend == "openai" and not args.base_url:
        print("error: --backend openai needs --base-url", file=sys.stderr)
        return 2
    parts = set(args.parts.split(","))
    results: dict = {}
    if "speed" in parts:
        results["speed"] = r = speed(threads=args.threads)
        cores = f"{args.threads} thread(s)" if args.threads else "default threads"
        print(f"\nBackend speed (same 5 prompts x 2, greedy, 64 new tokens, {cores})")
        print(
            table(
                ["backend", "time to first token p50 (ms)", "decode tokens/s", "tokens/s overall"],
                [
                    [k, v["ttft_ms_p50"], v["decode_tokens_per_s"], v["tokens_per_s"]]
                    for k, v in r.items()
                ],
            )
        )
    if "reuse" in parts:
        results["reuse"] = r = reuse()
        print("\nPrefix cache and batching (Kefu default backend, NLG system prompt, 32 tokens)")
        print(
            table(
                ["setting", "TTFT p50 (ms)", "latency p50 (ms)", "total tokens/s"],
                [
                    [
                        k,
                        v.get("ttft_ms_p50", "—"),
                        v.get("latency_ms_p50", "—"),
                        v.get("total_tokens_per_s", "—"),
                    ]  # fmt: skip
                    for k, v in r.items()
                ],
            )
        )
    if "nlg" in parts:
        from training.llm.data import assert_disjoint

        assert_disjoint([*TEMPLATES.values(), *TEMPLATES_ZH.values()], ITEMS + ITEMS_ZH)
        config = {"backend": args.backend, "timeout": 2.0}
        if args.backend == "transformers":
            config["quantize"] = args.quantize
        if args.base_url:
            config["base_url"] = args.base_url
        t = args.temperature
        runs = [("nlg", config, TEMPLATES, ITEMS, t)]
        if args.backend == "transformers":  # the tuned default and the base model, same run
            base = {**config, "adapter": "none"}
            runs.append(("nlg_base", base, TEMPLATES, ITEMS, t))
            if args.sampled:
                runs.append(("nlg_sampled", config, TEMPLATES, ITEMS, args.sampled))
            if not args.no_zh:
                runs += [
                    ("nlg_zh", config, TEMPLATES_ZH, ITEMS_ZH, t),
                    ("nlg_zh_base", base, TEMPLATES_ZH, ITEMS_ZH, t),
                ]
        for key, run_config, templates, items, temperature in runs:
            count = args.requests if not key.startswith("nlg_zh") else max(1, args.requests // 2)
            results[key] = r = nlg(
                count, run_config, templates=templates, items=items, temperature=temperature
            )
            print(
                f"\n{key}: rephrasing ({r['requests']} requests, backend {r['backend']}, adapter "
                f"{r['adapter']}, temperature {r['temperature']}, 2 s timeout): accepted and "
                "different "
                f"{r['accepted_and_different']:.1%}, {r['distinct_rephrasings_per_template']} "
                f"distinct wordings per template; p50 {r['latency_s_p50']} s, p95 "
                f"{r['latency_s_p95']} s; replies keeping every template fact: "
                f"{r['replies_keeping_every_fact']:.1%}"
            )
            print(table(["outcome", "share"], [[k, v] for k, v in r["reasons"].items()]))
    from pathlib import Path

    write_json(Path(args.json) if args.json else None, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
