"""Retrieval benchmark: BM25 vs dense vs hybrid on StackFAQ, AFQMC pair matching, shop QA.

    .venv/bin/python benchmarks/retrieval.py                      # all three parts
    .venv/bin/python benchmarks/retrieval.py --faq F.jsonl --queries Q.jsonl --json out.json
    .venv/bin/python benchmarks/retrieval.py --parts stackfaq --faq ths_faq/faq.jsonl \
        --queries ths_faq/queries.jsonl --json out.json      # Chinese finance FAQ (THS)

FAQ retrieval (part ``stackfaq``; any FAQ file in the same format, with or without answers —
``{faq_id, question[, answer]}`` — and queries ``{query, faq_id}``; a relative path is looked
up in ``KEFU_DATASETS`` when it is not a file here): every FAQ entry is ingested through Kefu's
own ingestion (question embedded, question + answer searched by BM25); each query must rank its
own entry first. For a Chinese FAQ the Chinese path runs (multilingual-e5-small with Kefu's
delta, jieba BM25), and the dense and default rankings are repeated with the untuned e5 for
comparison; for THS every ranking is also given on the queries of the third of the entries the
encoder's fine-tuning never saw (the fair visible figure).
AFQMC (zh): each pair is scored by the same BM25 tokenisation and encoder; AUC and accuracy at a
threshold chosen on even-numbered pairs and measured on odd-numbered ones.
Shop QA: hand-written questions about the demo shop's documents (some unanswerable) through
``KnowledgeBase.answer`` — answer rate, correct source, correct refusals — per question set
(``shop_qa``: the first set, which the gate and fusion weights were chosen on; ``holdout`` and
``test``: written later, each before any change was tried on it), all sets together, and a sweep
of the relevance gate (``min_relevance``) over all of them. The Chinese sets (``*_zh*``: the
first chosen on, ``holdout`` checked, ``test`` written before any Chinese tuning and only
measured) are answered from the Chinese policies and pooled separately, with their own gate
sweep (``min_zh_relevance``, or ``min_zh_support`` without the Chinese encoder).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from common import (
    DATASETS,
    dataset_path,
    offline_env,
    percentile,
    read_jsonl,
    require_files,
    write_json,
)

offline_env()

import numpy as np  # noqa: E402

from components.assistants import get_assistant  # noqa: E402
from components.settings import KnowledgeSettings, load_settings  # noqa: E402
from knowledge.fusion import HybridRanker  # noqa: E402
from knowledge.index import KnowledgeIndex  # noqa: E402
from knowledge.retrieval import KnowledgeBase  # noqa: E402
from knowledge.stores import MemoryStore  # noqa: E402

SHOP_QA = [
    Path(__file__).resolve().parent / "data" / f"shop_qa{lang}{kind}.jsonl"
    for lang in ("", "_zh")
    for kind in ("", "_holdout", "_test")
]
SHOP_DOCS = get_assistant("shop").docs
GATE_SWEEP = (0.46, 0.50, 0.54, 0.58, 0.62)
ZH_GATE_SWEEP = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45)


def set_language(name: str) -> str:
    """``zh`` for the Chinese question sets (``*_zh*``), else ``en``."""
    return "zh" if "_zh" in name else "en"


def chinese_faq(faq: Path) -> bool:
    """Whether most entries of an FAQ file are Chinese (the language ingestion gives them)."""
    from knowledge.converters import convert_file

    entries = convert_file(faq)
    return sum(d.meta.get("lang") == "zh" for d in entries) * 2 > len(entries)


def ranking_metrics(ranks: list[int | None]) -> dict:
    """P@1, MRR, Recall@5 from the 1-based rank of the gold item (None = not retrieved)."""
    n = len(ranks) or 1
    return {
        "p@1": sum(1 for r in ranks if r == 1) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
        "recall@5": sum(1 for r in ranks if r and r <= 5) / n,
    }


def knowledge_settings(**changes) -> KnowledgeSettings:
    """The shipped knowledge defaults with ``changes``; the cross-encoder is the deployment's
    (``kefu.knowledge.cross_encoder`` / ``KEFU_KB_CROSS_ENCODER``, none by default)."""
    deployed = load_settings().knowledge.cross_encoder
    return replace(KnowledgeSettings(cross_encoder=deployed), **changes)


def trained_on(faq_id: str) -> bool:
    """Whether the encoder's fine-tuning saw this FAQ entry's queries (THS: two thirds of them)."""
    if not str(faq_id).startswith("ths"):
        return False
    from training.encoders.e5_finetune import FinetuneConfig, ths_trained

    return ths_trained(str(faq_id), FinetuneConfig().ths_train_share)


def stackfaq(faq: Path, queries_path: Path, top_k: int = 20, zh_encoder: str | None = None) -> dict:
    """Rank FAQ threads for each query with every retriever variant.

    ``zh_encoder`` is the knowledge base's setting for Chinese entries (None: the shipped one,
    multilingual-e5-small with Kefu's delta; a folder, e.g. the untuned e5, to compare). For THS,
    the rankings are repeated on the queries of the entries the fine-tuning did not see.
    """
    queries = read_jsonl(queries_path)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        chosen = {"zh_encoder": zh_encoder} if zh_encoder else {}
        settings = knowledge_settings(top_k=top_k, **chosen)
        store = MemoryStore(Path(tmp) / "index.json")
        index = KnowledgeIndex(settings, store)
        report = index.ingest([faq], progress=False)
        build_s = time.monotonic() - started
        if report.failed:
            raise SystemExit(f"could not ingest {faq}: {report.failed}")
        kb = KnowledgeBase(settings, store)
        kb.warm_up()
        variants = {
            "bm25": None,
            "dense": None,
            "hybrid-rrf (naive, equal weights)": HybridRanker(
                mode="rrf", dense_weight=1, bm25_weight=1, top_k=top_k
            ),
            "hybrid (calibrated)": HybridRanker(top_k=top_k),
            "hybrid + sentence rerank (default)": "rerank",
        }
        ranks: dict[str, list] = {name: [] for name in variants}
        latency: list[float] = []
        # every query has its thread in the index: how often does the relevance gate let the
        # right thread through (KnowledgeBase.answer's rule), and a plain cosine gate for reference
        gated = {"relevance gate (default)": 0, "cosine >= 0.35": 0}
        for number, q in enumerate(queries, start=1):
            if number % 1000 == 0:
                print(f"[bench]   {number}/{len(queries)} queries", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            kb.retrieve(q["query"])  # what the assistant runs per question
            latency.append((time.perf_counter() - t0) * 1000)
            found = kb.candidates(q["query"])
            for name, ranker in variants.items():
                if ranker is None:
                    docs = found[name]
                elif ranker == "rerank":
                    docs = kb.retrieve(q["query"])
                else:
                    docs = ranker.run(
                        found["dense"], found["bm25"], q["query"], found["embedding"]
                    )["documents"]
                ids = [d.meta.get("faq_id") for d in docs]
                ranks[name].append(ids.index(q["faq_id"]) + 1 if q["faq_id"] in ids else None)
                if ranker == "rerank":
                    passed = [d for d, _ in kb.relevant(q["query"], docs)]
                    cosine = [d for d in docs if (d.meta.get("dense_score") or 0) >= 0.35]
                    for key, kept in zip(gated, (passed, cosine), strict=True):
                        gated[key] += bool(kept) and kept[0].meta.get("faq_id") == q["faq_id"]
    rows = {name: ranking_metrics(r) for name, r in ranks.items()}
    unseen = [i for i, q in enumerate(queries) if not trained_on(q["faq_id"])]
    if unseen and len(unseen) < len(queries):
        # the queries of the FAQ entries the encoder's fine-tuning never saw: the fair figure
        for name, r in ranks.items():
            rows[f"{name} [untrained entries, {len(unseen)} queries]"] = ranking_metrics(
                [r[i] for i in unseen]
            )
    return {
        "queries": len(queries),
        "faq_threads": report.sections,
        "index_build_s": round(build_s, 2),
        "query_ms_p50": round(percentile(latency, 50), 1),
        "query_ms_p95": round(percentile(latency, 95), 1),
        "retrievers": rows,
        "answered_right_thread": {k: round(v / len(queries), 4) for k, v in gated.items()},
    }


def afqmc(pairs_path: Path) -> dict:
    """Score zh question pairs with BM25-style char overlap and with the encoder's cosine."""
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersTextEmbedder,
    )

    from components.model_prep import minilm_path
    from knowledge.retrieval import zh_overlap

    pairs = read_jsonl(pairs_path)
    embedder = SentenceTransformersTextEmbedder(
        model=str(minilm_path()),
        local_files_only=True,
        normalize_embeddings=True,
        progress_bar=False,
    )
    embedder.warm_up()
    sentences = sorted({p["sentence1"] for p in pairs} | {p["sentence2"] for p in pairs})
    vectors = dict(
        zip(
            sentences,
            embedder.embedding_backend.embed(sentences, batch_size=64, normalize_embeddings=True),
            strict=True,
        )
    )
    labels = np.array([p["label"] for p in pairs])
    scores = {
        "char overlap (BM25 tokens)": np.array(
            [
                (
                    zh_overlap(p["sentence1"], p["sentence2"])
                    + zh_overlap(p["sentence2"], p["sentence1"])
                )
                / 2
                for p in pairs
            ]
        ),
        "dense MiniLM cosine": np.array(
            [float(np.dot(vectors[p["sentence1"]], vectors[p["sentence2"]])) for p in pairs]
        ),
    }
    rows = {}
    for name, s in scores.items():
        even, odd = np.arange(len(pairs)) % 2 == 0, np.arange(len(pairs)) % 2 == 1
        thresholds = np.unique(s[even])
        best = max(thresholds, key=lambda t: ((s[even] >= t) == labels[even]).mean())
        pred = s[odd] >= best
        tp = int((pred & (labels[odd] == 1)).sum())
        f1 = 2 * tp / max(1, pred.sum() + (labels[odd] == 1).sum())
        rows[name] = {
            "auc": round(auc(s, labels), 4),
            "acc": round(float((pred == labels[odd]).mean()), 4),
            "pos_f1": round(f1, 4),
        }
    return {"pairs": len(pairs), "scorers": rows}


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic, ties averaged)."""
    order = scores.argsort()
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):
        tie = scores == value
        ranks[tie] = ranks[tie].mean()
    pos = labels == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


DEFAULT_SHOP = "hybrid + sentence rerank (default)"
SHOP_VARIANTS = {"hybrid (no rerank)": 0.0, DEFAULT_SHOP: 0.5}


#: Intents after which the demo shop runs the knowledge action (training_data/rules.yml).
KNOWLEDGE_INTENTS = {"ask_policy", "nlu_fallback"}


class NLURouter:
    """Routes a question as the assistant does: the trained model's intent decides whether the
    knowledge base is asked at all (``ask_policy`` and ``nlu_fallback`` go to it; anything else,
    e.g. ``out_of_scope``, is a refusal with an offer of a human)."""

    def __init__(self, model: Path) -> None:
        import asyncio

        from rasa.core.agent import Agent

        self.loop = asyncio.new_event_loop()
        self.agent = Agent.load(str(model))

    def intent(self, text: str) -> str:
        parsed = self.loop.run_until_complete(self.agent.parse_message(text))
        return (parsed.get("intent") or {}).get("name") or ""


def shop_qa(qa_paths: list[Path], kb_llm: str | None = None, model: Path | None = None) -> dict:
    """Answer rate, citation accuracy and refusals on the demo shop's documents, per question
    set and variant, for all sets together, and for a sweep of ``min_relevance``.

    With ``kb_llm`` set, a third variant sends the default variant's answers through the
    grounded LLM composer (a declined answer counts as a refusal, as in the action): share of
    LLM answers that pass the checks, fallback reasons and composition latency.
    """
    from knowledge.answering import AnswerComposer

    sets = {path.stem: read_jsonl(path) for path in qa_paths}
    # (name, rerank weight, grounded LLM composer, NLU router)
    variants = [(name, weight, None, None) for name, weight in SHOP_VARIANTS.items()]
    if model:
        router = NLURouter(model)
        variants.append(
            ("assistant: NLU routing + default", SHOP_VARIANTS[DEFAULT_SHOP], None, router)
        )
    if kb_llm:
        # the transformers backend: the base model and the tuned one (the shipped LoRA adapter,
        # see training/llm), same run
        adapters = [("base", "none"), ("tuned", "auto")] if kb_llm == "transformers" else [("", "")]
        for label, adapter in adapters:
            llm = {"backend": kb_llm, "timeout": 3.0, **({"adapter": adapter} if adapter else {})}
            composer = AnswerComposer(llm=llm)
            name = f"{DEFAULT_SHOP} + grounded LLM ({kb_llm}{', ' + label if label else ''})"
            variants.append((name, SHOP_VARIANTS[DEFAULT_SHOP], composer, None))
    result: dict = {"sets": {name: {"variants": {}} for name in sets}, "all": {}}
    with tempfile.TemporaryDirectory() as tmp:
        store = MemoryStore(Path(tmp) / "index.json")
        KnowledgeIndex(knowledge_settings(), store).ingest([SHOP_DOCS], progress=False)
        kbs = {
            w: KnowledgeBase(knowledge_settings(rerank_weight=w), store)
            for w in SHOP_VARIANTS.values()
        }
        for name, weight, composer, router in variants:
            kb = kbs[weight]
            kb.warm_up()
            for set_name, cases in sets.items():
                variant = _shop_variant(kb, cases, composer, router)
                if composer:
                    variant["llm"]["backend"] = kb_llm
                    variant["llm"]["adapter"] = composer.llm.get("adapter", "")
                result["sets"][set_name]["variants"][name] = variant
            result["all"][name] = _pooled([s["variants"][name] for s in result["sets"].values()])
            for lang in sorted({set_language(n) for n in sets}):
                result.setdefault("by_language", {}).setdefault(lang, {})[name] = _pooled(
                    [
                        s["variants"][name]
                        for n, s in result["sets"].items()
                        if set_language(n) == lang
                    ]
                )
        by_lang = {
            lang: [c for n, cases in sets.items() if set_language(n) == lang for c in cases]
            for lang in ("en", "zh")
        }
        result["gate_sweep"], result["zh_gate_sweep"] = {}, {}
        default = kbs[SHOP_VARIANTS[DEFAULT_SHOP]]
        shipped = default.settings
        for threshold in GATE_SWEEP if by_lang["en"] else ():
            default.settings = replace(shipped, min_relevance=threshold)
            result["gate_sweep"][threshold] = _pooled([_shop_variant(default, by_lang["en"])])
        default.settings = shipped
        # the Chinese gate's threshold: min_zh_relevance with the Chinese encoder, else support
        zh_key = "min_zh_relevance" if default._stages.zh_embedder is not None else "min_zh_support"
        result["zh_gate"] = zh_key
        for threshold in ZH_GATE_SWEEP if by_lang["zh"] else ():
            default.settings = replace(shipped, **{zh_key: threshold})
            result["zh_gate_sweep"][threshold] = _pooled([_shop_variant(default, by_lang["zh"])])
    for name, cases in sets.items():
        result["sets"][name]["answerable"] = sum(1 for c in cases if c["source"])
        result["sets"][name]["unanswerable"] = sum(1 for c in cases if not c["source"])
    return result


def _pooled(variants: list[dict]) -> dict:
    counts = {k: sum(v["counts"][k] for v in variants) for k in variants[0]["counts"]}
    return {
        "answer_rate": round(counts["answered"] / (counts["answerable"] or 1), 4),
        "correct_source": round(counts["cited"] / (counts["answerable"] or 1), 4),
        "correct_refusals": round(counts["refused"] / (counts["unanswerable"] or 1), 4),
        "counts": counts,
    }


def _shop_variant(
    kb: KnowledgeBase, cases: list[dict], composer=None, router: NLURouter | None = None
) -> dict:
    intents: dict[str, int] = {}
    llm_modes: dict[str, int] = {}
    llm_latency: list[float] = []
    latency: list[float] = []
    cited, answered, refused, wrong = 0, 0, 0, []
    for case in cases:
        t0 = time.perf_counter()
        answer = kb.answer(case["question"])
        latency.append((time.perf_counter() - t0) * 1000)
        found = answer.found
        if router:
            intent = router.intent(case["question"])
            intents[intent] = intents.get(intent, 0) + 1
            found = found and intent in KNOWLEDGE_INTENTS
        if found and composer:
            t0 = time.perf_counter()
            composed = composer.compose(case["question"], [p["text"] for p in answer.passages])
            llm_latency.append((time.perf_counter() - t0) * 1000)
            key = "accepted" if composed.mode == "llm" else composed.reason
            key = f"{'answerable' if case['source'] else 'unanswerable'}:{key}"
            llm_modes[key] = llm_modes.get(key, 0) + 1
            found = composed.mode != "declined"  # the action refuses too
        miss = {"question": case["question"], "got": answer.source if found else None}
        if answer.found and not found:
            miss["declined_by_llm"] = answer.source
        if case["source"]:
            answered += found
            if found and answer.source == case["source"]:
                cited += 1
            else:
                wrong.append(miss)
        else:
            refused += not found
            if found:
                wrong.append(miss)
    counts = {
        "answerable": sum(1 for c in cases if c["source"]),
        "unanswerable": sum(1 for c in cases if not c["source"]),
        "answered": answered,
        "cited": cited,
        "refused": refused,
    }
    result = {
        **_pooled([{"counts": counts}]),
        "retrieval_ms_p50": round(percentile(latency, 50), 1),
        "errors": wrong,
    }
    if router:
        result["intents"] = intents
    if composer:
        gated = {
            k: sum(v for o, v in llm_modes.items() if o.startswith(f"{k}:"))
            for k in ("answerable", "unanswerable")
        }
        result["llm"] = {
            "outcomes": dict(sorted(llm_modes.items())),
            # among answerable questions that passed the relevance gate: LLM answer accepted
            "answerable_gated": gated["answerable"],
            "answerable_accepted": llm_modes.get("answerable:accepted", 0),
            # among unanswerable ones that passed it: the LLM declined (a correct refusal)
            "unanswerable_gated": gated["unanswerable"],
            "unanswerable_declined": llm_modes.get("unanswerable:llm_declined", 0),
            "compose_ms_p50": round(percentile(llm_latency, 50), 1),
            "compose_ms_p95": round(percentile(llm_latency, 95), 1),
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faq", type=Path, default=DATASETS / "stackfaq" / "faq.jsonl")
    parser.add_argument("--queries", type=Path, default=DATASETS / "stackfaq" / "queries.jsonl")
    parser.add_argument("--afqmc", type=Path, default=DATASETS / "afqmc" / "dev_visible.jsonl")
    parser.add_argument(
        "--shop-qa",
        type=Path,
        action="append",
        default=None,
        help="shop question set (JSONL: question, source or null); repeatable; default: all three",
    )
    parser.add_argument("--parts", default="stackfaq,afqmc,shop", help="comma-separated parts")
    parser.add_argument(
        "--kb-llm", default=None, help="also measure grounded LLM answers (e.g. transformers)"
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="a trained assistant (.tar.gz): also route each shop question through its NLU",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    args.faq, args.queries, args.afqmc = map(dataset_path, (args.faq, args.queries, args.afqmc))
    shop_sets = args.shop_qa or SHOP_QA
    needed = {"stackfaq": [args.faq, args.queries], "afqmc": [args.afqmc], "shop": shop_sets}
    if not require_files([p for part in parts for p in needed.get(part, [])]):
        return 2
    results: dict = {}
    if "stackfaq" in parts:
        name = args.faq.parent.name or "faq"
        print(f"[bench] FAQ retrieval ({name}) ...", file=sys.stderr, flush=True)
        results["stackfaq"] = r = stackfaq(args.faq, args.queries)
        r["faq"] = name
        if chinese_faq(args.faq):  # the same ranking with the untuned multilingual-e5-small
            from components.model_prep import e5_base_path

            print("[bench] ... with the untuned e5", file=sys.stderr, flush=True)
            base = stackfaq(args.faq, args.queries, zh_encoder=str(e5_base_path()))
            for retriever, m in base["retrievers"].items():
                if retriever.startswith(("dense", "hybrid + sentence rerank (default)")):
                    r["retrievers"][f"{retriever}, untuned e5"] = m
        print(
            f"\n{name} ({r['queries']} queries, {r['faq_threads']} entries; "
            f"index {r['index_build_s']} s; query p50 {r['query_ms_p50']} ms, "
            f"p95 {r['query_ms_p95']} ms)"
        )
        print("| retriever | P@1 | MRR | Recall@5 |\n|---|---|---|---|")
        for retriever, m in r["retrievers"].items():
            print(f"| {retriever} | {m['p@1']:.3f} | {m['mrr']:.3f} | {m['recall@5']:.3f} |")
        print("\n| gate | answered with the right thread |\n|---|---|")
        for name, share in r["answered_right_thread"].items():
            print(f"| {name} | {share:.3f} |")
    if "afqmc" in parts:
        print("[bench] AFQMC ...", file=sys.stderr, flush=True)
        results["afqmc"] = r = afqmc(args.afqmc)
        print(
            f"\nAFQMC pair matching ({r['pairs']} pairs; "
            "threshold fit on even pairs, measured on odd)"
        )
        print("| scorer | AUC | accuracy | positive F1 |\n|---|---|---|---|")
        for name, m in r["scorers"].items():
            print(f"| {name} | {m['auc']:.3f} | {m['acc']:.3f} | {m['pos_f1']:.3f} |")
    if "shop" in parts:
        print("[bench] shop QA ...", file=sys.stderr, flush=True)
        results["shop_qa"] = r = shop_qa(shop_sets, args.kb_llm, args.model)
        print("\nShop QA")
        print("| questions | ranking | answer rate | correct source | correct refusals | p50 ms |")
        print("|---|---|---|---|---|---|")
        for set_name, qa in r["sets"].items():
            label = f"{set_name} ({qa['answerable']} + {qa['unanswerable']} unanswerable)"
            for name, v in qa["variants"].items():
                print(
                    f"| {label} | {name} | {v['answer_rate']:.3f} | {v['correct_source']:.3f} | "
                    f"{v['correct_refusals']:.3f} | {v['retrieval_ms_p50']} |"
                )
        for name, v in r["all"].items():
            c = v["counts"]
            print(
                f"| all ({c['answerable']} + {c['unanswerable']} unanswerable) | {name} | "
                f"{v['answer_rate']:.3f} | {v['correct_source']:.3f} | "
                f"{v['correct_refusals']:.3f} | |"
            )
        for lang, variants in r.get("by_language", {}).items():
            for name, v in variants.items():
                c = v["counts"]
                print(
                    f"| all {lang} ({c['answerable']} + {c['unanswerable']} unanswerable) | "
                    f"{name} | {v['answer_rate']:.3f} | {v['correct_source']:.3f} | "
                    f"{v['correct_refusals']:.3f} | |"
                )
        zh_label = r.get("zh_gate", "min_zh_relevance")
        for key, label in (("gate_sweep", "min_relevance"), ("zh_gate_sweep", zh_label)):
            if not r[key]:
                continue
            which = "Chinese" if key == "zh_gate_sweep" else "English"
            print(f"\nRelevance gate ({label}), default ranking, all {which} question sets")
            print(f"| {label} | correct source | correct refusals |\n|---|---|---|")
            for threshold, v in r[key].items():
                print(f"| {threshold} | {v['correct_source']:.3f} | {v['correct_refusals']:.3f} |")
        for set_name, qa in r["sets"].items():
            for v in qa["variants"].values():
                if "llm" in v:
                    llm = v["llm"]
                    print(
                        f"\nGrounded LLM answers, {set_name} ({llm['backend']}): "
                        f"{llm['outcomes']}; compose p50 {llm['compose_ms_p50']} ms, "
                        f"p95 {llm['compose_ms_p95']} ms"
                    )
            for error in qa["variants"][DEFAULT_SHOP]["errors"]:
                print(f"  miss ({set_name}): {error['question']!r} -> {error['got']}")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
