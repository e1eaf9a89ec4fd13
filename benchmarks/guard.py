"""Guard benchmark: throughput, false positives, offensive recall, evasions, PII spans, vault.

    .venv/bin/python benchmarks/guard.py --json benchmarks/results/guard.json
    .venv/bin/python benchmarks/guard.py --pii P.jsonl --offensive O.csv --clean C.jsonl ...

Parts (``--parts``, default all):

* ``throughput``: ~1M characters of COLD + AFQMC text through the engine built from the *full*
  raw zh lexicon (all 51k entries) and from Kefu's curated default, normalisation included, per
  message and batched (``scan_many``), next to plain pyahocorasick on the raw text with the raw
  lexicon (no normalisation); p50/p95 per 500-character message.
* ``false_positives``: share of clean sentences (``--clean``: AFQMC sentence pairs, CAIS dev by
  default; CSV ``text`` column or JSONL ``text``/``sentence1``/``sentence2``) with any hit, and
  with a hit that changes the text (mask/block), for the curated default and the raw lexicon.
* ``offensive``: on ``--offensive`` (COLD dev, CSV ``label,text``): accuracy, macro F1, recall on
  offensive rows and hit rate on safe rows for each engine; ``kefu_default`` is the guard as
  shipped (curated lexicons + the learned Chinese classifier; a text counts as offensive when
  it gets any hit).
* ``evasion``: words sampled from the shipped lexicons (seeded), each rewritten by 16 evasion
  techniques and embedded in a sentence; caught = a hit overlapping the rewritten word.
* ``pii``: span P/R/F2 at IoU 0.7 and 0.9 on ``--pii`` (Presidio synthetic, types mapped to
  Kefu's) for Kefu as shipped (``kefu``: rules + the learned name/address tagger) and rules only
  (``kefu_rules``), next to Presidio's pattern recognisers when presidio-analyzer is installed;
  names and addresses on CLUENER dev (``--cluener``, exact spans, F1); and on a generated
  Chinese set (IDs with valid check digits, mobiles, bank cards, e-mails, names, addresses, plus
  look-alike negatives: order numbers, amounts, invalid IDs and cards).
* ``cost``: the guard as a message sees it with the classifiers on (lexicons + offensive
  classifier + rules + tagger), p50/p95 per 500-character message, Chinese and English.
* ``vault``: every text of both PII sets masked with a vault and revealed again.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from pathlib import Path

from common import DATASETS, offline_env, percentile, read_jsonl, require_files, table, write_json

offline_env()

from components.privacy.pii import PIIMasker  # noqa: E402
from components.privacy.recognisers import TOKEN, find_pii  # noqa: E402
from components.privacy.tagger import default_tagger  # noqa: E402
from components.privacy.vault import Vault  # noqa: E402
from components.safety.engine import GuardEngine  # noqa: E402
from components.safety.lexicon import DEFAULT_LEXICONS, LexiconEntry, load_lexicon  # noqa: E402
from components.safety.offensive import default_classifier  # noqa: E402
from deployment import pii_samples as samples  # noqa: E402

# Presidio type → Kefu type (types Kefu does not mask, e.g. DATE_TIME or GPE, are not scored).
PRESIDIO_TYPES = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "BANK_CARD",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP",
    "US_SSN": "US_SSN",
    "PERSON": "NAME",
    "STREET_ADDRESS": "ADDRESS",
}
STRUCTURED = {"EMAIL", "PHONE", "BANK_CARD", "IBAN", "IP", "US_SSN", "CN_ID"}


def read_texts(path: Path) -> list[str]:
    """Texts of a CSV (``text`` column) or JSONL (``text`` or ``sentence1``/``sentence2``)."""
    if path.suffix == ".csv":
        with path.open(encoding="utf-8") as handle:
            return [row["text"] for row in csv.DictReader(handle)]
    texts = []
    for row in read_jsonl(path):
        texts += [row[k] for k in ("text", "sentence1", "sentence2") if row.get(k)]
    return list(dict.fromkeys(texts))


def raw_zh_lexicon() -> list[LexiconEntry]:
    path = DATASETS / "sensitive_lexicon_zh" / "lexicon.csv"
    with path.open(encoding="utf-8") as handle:
        words = {row["word"].strip() for row in csv.DictReader(handle)}
    return [LexiconEntry(w, "raw", 2, "mask") for w in sorted(words) if w and "+" not in w]


# ------------------------------------------------------------------ throughput
def throughput(engines: dict[str, GuardEngine], offensive: Path, clean: list[Path]) -> dict:
    texts = read_texts(offensive) + [t for p in clean for t in read_texts(p)]
    rng = random.Random(7)
    rng.shuffle(texts)
    corpus, size = [], 0
    while size < 1_000_000:
        for text in texts:
            corpus.append(text)
            size += len(text)
            if size >= 1_000_000:
                break
    joined = "".join(corpus)
    long_messages = [joined[i : i + 500] for i in range(0, 500 * 2000, 500)]
    out: dict = {"chars": size, "messages": len(corpus), "engines": {}}
    for name, engine in engines.items():
        engine.scan_many(corpus[:100])  # warm up
        runs = []
        for _ in range(3):  # best of three: a shared 2-core machine is noisy
            start = time.perf_counter()
            engine.scan_many(corpus)
            runs.append(time.perf_counter() - start)
        batched = size / min(runs)
        start = time.perf_counter()
        for text in corpus:
            engine.scan(text)
        single = size / (time.perf_counter() - start)
        latencies = []
        for text in long_messages:
            start = time.perf_counter()
            engine.scan(text)
            latencies.append((time.perf_counter() - start) * 1000)
        out["engines"][name] = {
            "terms": len(engine),
            "batched_chars_per_s": round(batched),
            "per_message_chars_per_s": round(single),
            "ms_p50_500_chars": round(percentile(latencies, 50), 3),
            "ms_p95_500_chars": round(percentile(latencies, 95), 3),
        }
    try:
        import ahocorasick
    except ImportError:
        out["pyahocorasick"] = None
    else:
        automaton = ahocorasick.Automaton()
        for entry in raw_zh_lexicon():
            automaton.add_word(entry.term, entry.term)
        automaton.make_automaton()
        start = time.perf_counter()
        for text in corpus:
            list(automaton.iter(text))
        single = size / (time.perf_counter() - start)
        start = time.perf_counter()
        list(automaton.iter("\n".join(corpus)))
        batched = size / (time.perf_counter() - start)
        out["pyahocorasick"] = {
            "per_message_chars_per_s": round(single),
            "batched_chars_per_s": round(batched),
        }
    return out


# ------------------------------------------------------------------ false positives
def false_positives(engines: dict[str, GuardEngine], clean: list[Path]) -> dict:
    out = {}
    for path in clean:
        texts = read_texts(path)
        out[path.parent.name + "/" + path.name] = row = {"texts": len(texts)}
        for name, engine in engines.items():
            results = engine.scan_many(texts)
            row[name] = {
                "any_hit": sum(bool(r.hits) for r in results) / len(texts),
                "mask_or_block": sum(r.action in ("mask", "block") for r in results) / len(texts),
            }
    return out


# ------------------------------------------------------------------ offensive recall
def offensive(engines: dict[str, GuardEngine], path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = {"rows": len(rows)}
    for name, engine in engines.items():
        results = engine.scan_many([r["text"] for r in rows])
        flagged = [bool(res.hits) for res in results]
        gold = [r["label"] == "1" for r in rows]
        pos = [f for f, g in zip(flagged, gold, strict=True) if g]
        neg = [f for f, g in zip(flagged, gold, strict=True) if not g]
        out[name] = {
            "accuracy": sum(f == g for f, g in zip(flagged, gold, strict=True)) / len(rows),
            "macro_f1": _macro_f1(flagged, gold),
            "recall_offensive": sum(pos) / len(pos),
            "hit_rate_safe": sum(neg) / len(neg),
        }
    return out


def _macro_f1(predicted: list[bool], gold: list[bool]) -> float:
    scores = []
    for positive in (True, False):
        tp = sum(p == positive and g == positive for p, g in zip(predicted, gold, strict=True))
        fp = sum(p == positive and g != positive for p, g in zip(predicted, gold, strict=True))
        fn = sum(p != positive and g == positive for p, g in zip(predicted, gold, strict=True))
        scores.append(_prf(tp, fp, fn, beta=1)["f1"])
    return sum(scores) / 2


def _prf(tp: int, fp: int, fn: int, beta: int = 2) -> dict:
    """Precision, recall and F-beta (key ``f1``/``f2``...) from counts, and the gold support."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = (1 + beta**2) * p * r / (beta**2 * p + r) if p + r else 0.0
    return {"precision": p, "recall": r, f"f{beta}": f, "support": tp + fn}


# ------------------------------------------------------------------ evasion suite
_BOLD = {c: chr(0x1D41A + i) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")}
_CIRCLED = {c: chr(0x24D0 + i) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")}
_NEG_SQUARED = {c: chr(0x1F170 + i) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")}
_CYRILLIC = {"a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у", "i": "і"}
_LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "$", "t": "7"}


def _fullwidth(word: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in word)


def _evasions_en(word: str, rng: random.Random) -> dict[str, str]:
    pos = rng.randrange(len(word))
    return {
        "case": "".join(c.upper() if i % 2 else c for i, c in enumerate(word)),
        "full_width": _fullwidth(word),
        "stylized_bold": "".join(_BOLD.get(c, c) for c in word),
        "stylized_circled": "".join(_CIRCLED.get(c, c) for c in word),
        "stylized_squared": "".join(_NEG_SQUARED.get(c, c) for c in word),
        "separators": "*".join(word),
        "spaces": " ".join(word),
        "repeats": word[: pos + 1] + word[pos] * 3 + word[pos + 1 :],
        "zero_width": "\u200b".join(word),
        "leetspeak": "".join(_LEET.get(c, c) for c in word),
        "accents": "".join(c + "\u0301" if c in "aeiou" else c for c in word),
        "homoglyphs": "".join(_CYRILLIC.get(c, c) for c in word),
    }


def _evasions_zh(word: str, rng: random.Random, s2t, pinyin) -> dict[str, str]:
    pos = rng.randrange(len(word))
    syllables = pinyin(word)
    return {
        "traditional": s2t(word),
        "separators": "*".join(word),
        "spaces": " ".join(word),
        "repeats": word[: pos + 1] + word[pos] * 2 + word[pos + 1 :],
        "zero_width": "\u200b".join(word),
        "full_width_mixed": _fullwidth(word),
        "pinyin_full": "".join(syllables),
        "pinyin_spaced": " ".join(syllables),
    }


def evasion(engine: GuardEngine, per_language: int = 25, seed: int = 13) -> dict:
    import opencc
    from pypinyin import lazy_pinyin

    s2t = opencc.OpenCC("s2t").convert
    entries = [e for p in DEFAULT_LEXICONS if p.is_file() for e in load_lexicon(p)]
    en = sorted(
        {
            e.term
            for e in entries
            if e.action != "flag" and e.term.isascii() and e.term.isalpha() and len(e.term) >= 4
        }
    )
    zh = sorted(
        {
            e.term
            for e in entries
            if e.action != "flag"
            and e.category != "illegal_site"
            and 2 <= len(e.term) <= 4
            and all("\u4e00" <= c <= "\u9fff" for c in e.term)
        }
    )
    rng = random.Random(seed)
    en_words, zh_words = rng.sample(en, per_language), rng.sample(zh, per_language)
    cases: dict[str, list[tuple[str, str, str, str]]] = {}  # word, lead, variant, tail
    for word in en_words:
        for kind, variant in _evasions_en(word, rng).items():
            lead = "you are such a "
            cases.setdefault(f"en:{kind}", []).append((word, lead, variant, "!"))
    for word in zh_words:
        for kind, variant in _evasions_zh(word, rng, s2t, lazy_pinyin).items():
            if kind == "traditional" and variant == word:
                continue  # no traditional form differs
            lead = "ni zhen shi " if kind.startswith("pinyin") else "你真是"
            tail = " a" if kind.startswith("pinyin") else "啊"
            cases.setdefault(f"zh:{kind}", []).append((word, lead, variant, tail))
    out: dict = {"words_per_language": per_language, "categories": {}}
    for kind, items in cases.items():
        misses = []
        for word, lead, variant, tail in items:
            start, end = len(lead), len(lead) + len(variant)
            hits = engine.scan(lead + variant + tail).hits
            if not any(h.start < end and h.end > start for h in hits):
                misses.append(word)
        out["categories"][kind] = {
            "cases": len(items),
            "caught": (len(items) - len(misses)) / len(items),
            "missed": misses[:5],
        }
    return out


# ------------------------------------------------------------------ PII spans
def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union else 0.0


def span_scores(gold: list[list[tuple]], pred: list[list[tuple]], iou: float) -> dict:
    """Per-type and micro P/R/F2 for typed spans ``(type, start, end)`` matched at ``iou``."""
    counts: dict[str, list[int]] = {}  # type → [tp, fp, fn]
    for gold_spans, pred_spans in zip(gold, pred, strict=True):
        used = set()
        for kind, start, end in pred_spans:
            match = next(
                (
                    i
                    for i, (g_kind, g_start, g_end) in enumerate(gold_spans)
                    if i not in used
                    and g_kind == kind
                    and _iou((start, end), (g_start, g_end)) >= iou
                ),
                None,
            )
            counts.setdefault(kind, [0, 0, 0])
            if match is None:
                counts[kind][1] += 1
            else:
                used.add(match)
                counts[kind][0] += 1
        for i, (kind, _, _) in enumerate(gold_spans):
            if i not in used:
                counts.setdefault(kind, [0, 0, 0])[2] += 1

    def micro(kinds) -> dict:
        tp, fp, fn = (sum(counts[k][i] for k in kinds if k in counts) for i in range(3))
        return _prf(tp, fp, fn)

    return {
        "per_type": {k: _prf(*v) for k, v in sorted(counts.items())},
        "structured": micro(STRUCTURED),
        "all": micro(counts),
    }


_PRESIDIO_SCRIPT = """
import json, sys
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer, EmailRecognizer, IbanRecognizer, IpRecognizer, PhoneRecognizer,
    UsSsnRecognizer)
recognisers = [CreditCardRecognizer(), EmailRecognizer(), IbanRecognizer(), IpRecognizer(),
               PhoneRecognizer(), UsSsnRecognizer()]
for line in sys.stdin:
    text = json.loads(line)
    spans = [(r.entity_type, r.start, r.end, r.score)
             for rec in recognisers for r in rec.analyze(text, rec.supported_entities, None)]
    print(json.dumps(spans))
"""


def presidio_pattern_predictions(texts: list[str], python: str | None) -> list[list[tuple]] | None:
    """Spans from Presidio's pattern recognisers (no NLP model), or None when unavailable.

    presidio-analyzer needs pydantic 2, which Rasa 3.6's resolution forbids, so it runs in its
    own interpreter (``--presidio-python``, e.g. a venv with ``pip install presidio-analyzer``).
    """
    if not python:
        return None
    import json
    import subprocess

    done = subprocess.run(
        [python, "-c", _PRESIDIO_SCRIPT],
        input="\n".join(json.dumps(t) for t in texts),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(f"warning: presidio baseline failed: {done.stderr[-500:]}", file=sys.stderr)
        return None
    out = []
    for line in done.stdout.splitlines():
        spans = []
        for entity, start, end, score in json.loads(line):
            kind = PRESIDIO_TYPES.get(entity)
            if kind and score >= 0.4:  # Presidio's own default decision threshold is lower
                spans.append((kind, start, end))
        out.append(spans)
    return out


def pii_presidio(path: Path, tagger, presidio_python: str | None = None) -> dict:  # noqa: ANN001
    rows = read_jsonl(path)
    gold = [
        [
            (PRESIDIO_TYPES[s["type"]], s["start"], s["end"])
            for s in r["spans"]
            if s["type"] in PRESIDIO_TYPES
        ]
        for r in rows
    ]
    kinds = set(PRESIDIO_TYPES.values())
    out: dict = {"samples": len(rows)}
    for system, learned in (("kefu", tagger), ("kefu_rules", None)):
        start = time.perf_counter()
        pred = [[(s.type, s.start, s.end) for s in find_pii(r["text"], learned)] for r in rows]
        elapsed = time.perf_counter() - start
        pred = [[s for s in spans if s[0] in kinds] for spans in pred]
        out[f"ms_per_sample_{system}"] = round(elapsed / len(rows) * 1000, 3)
        out[system] = {str(iou): span_scores(gold, pred, iou) for iou in (0.7, 0.9)}
    out["ms_per_sample"] = out["ms_per_sample_kefu"]
    presidio = presidio_pattern_predictions([r["text"] for r in rows], presidio_python)
    out["presidio_patterns"] = (
        {str(iou): span_scores(gold, presidio, iou) for iou in (0.7, 0.9)} if presidio else None
    )
    return out


def pii_cluener(path: Path, tagger) -> dict:  # noqa: ANN001
    """Exact-span P/R/F1 of names and addresses on CLUENER rows (rules + tagger, as shipped)."""
    kinds = {"name": "NAME", "address": "ADDRESS"}
    rows = read_jsonl(path)
    counts = {k: [0, 0, 0] for k in kinds.values()}
    for row in rows:
        gold = {
            (kinds[e["type"]], e["start"], e["end"])
            for e in row.get("entities", [])
            if e["type"] in kinds
        }
        pred = {(s.type, s.start, s.end) for s in find_pii(row["text"], tagger) if s.type in counts}
        for kind, c in counts.items():
            g = {x for x in gold if x[0] == kind}
            p = {x for x in pred if x[0] == kind}
            c[0] += len(g & p)
            c[1] += len(p - g)
            c[2] += len(g - p)
    return {"rows": len(rows), **{kind: _prf(*c, beta=1) for kind, c in counts.items()}}


def guard_cost(engine: GuardEngine, tagger, offensive: Path, pii: Path) -> dict:  # noqa: ANN001
    """Per-message cost of the guard with the classifiers on, for 500-character messages."""
    zh = "".join(read_texts(offensive))
    en = "\n".join(r["text"] for r in read_jsonl(pii)) if pii.is_file() else ""
    out = {}
    for language, corpus in (("zh", zh), ("en", en)):
        messages = [corpus[i : i + 500] for i in range(0, min(len(corpus), 500 * 400) - 499, 500)]
        if not messages:
            continue
        for text in messages[:5]:
            engine.scan(text)
            find_pii(text, tagger)
        parts: dict[str, list[float]] = {"total": [], "lexicons_and_classifier": [], "pii": []}
        for text in messages:
            start = time.perf_counter()
            engine.scan(text)
            middle = time.perf_counter()
            find_pii(text, tagger)
            end = time.perf_counter()
            parts["lexicons_and_classifier"].append((middle - start) * 1000)
            parts["pii"].append((end - middle) * 1000)
            parts["total"].append((end - start) * 1000)
        out[language] = {
            "messages": len(messages),
            **{
                f"{name}_ms_{q}": round(percentile(values, q), 3)
                for name, values in parts.items()
                for q in (50, 95)
            },
        }
    return out


def zh_pii_set(n: int = 400, seed: int = 5) -> list[dict]:
    """Generated Chinese customer-service messages with labelled personal data and decoys."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        kind = rng.choice(["CN_ID", "PHONE", "BANK_CARD", "EMAIL", "NAME", "ADDRESS", "NONE"])
        if kind == "CN_ID":
            value = samples.cn_id(rng)
            template = rng.choice(
                ["我的身份证号是{v}，帮我查一下", "身份证：{v}", "实名认证用的{v}不对吗"]
            )
        elif kind == "PHONE":
            value = samples.cn_mobile(rng)
            template = rng.choice(["手机号{v}，快递到了打我电话", "联系电话：{v}", "请回拨{v}谢谢"])
        elif kind == "BANK_CARD":
            value = samples.luhn_card(
                rng.choice(["622202", "621700", "6228"]), rng.choice([16, 19]), rng
            )
            template = rng.choice(["退款请打到银行卡{v}", "我的卡号是{v}", "尾号不对，完整卡号{v}"])
        elif kind == "EMAIL":
            value = rng.choice(["wang", "li.na", "zhang_wei"]) + str(rng.randint(1, 999))
            value += "@" + rng.choice(["qq.com", "163.com", "example.cn"])
            template = rng.choice(["发票发到{v}", "邮箱{v}收不到验证码"])
        elif kind == "NAME":
            value = samples.zh_name(rng)
            template = rng.choice(["我叫{v}，订单有问题", "收货人：{v}", "联系人{v}，尽快处理"])
        elif kind == "ADDRESS":
            value = samples.zh_address(rng, with_unit=rng.random() < 0.5)
            template = rng.choice(["地址改成{v}", "寄到{v}，谢谢", "收货地址：{v}"])
        else:
            value = None
            template = rng.choice(
                [
                    f"订单KF{rng.randint(100000, 999999)}什么时候到",
                    f"一共{rng.randint(100, 99999)}.{rng.randint(0, 99):02d}元，能便宜点吗",
                    f"运单号SF{rng.randint(10**9, 10**10 - 1)}",
                    f"身份证号{samples.cn_id(rng)[:-1]}{'Y'}输错了",  # invalid check character
                    f"卡号{samples.not_luhn_card(rng)}输错了",
                    f"{rng.randint(2020, 2026)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日下单",
                    f"客服工号{rng.randint(10000000, 99999999)}",
                ]
            )
        text = template.replace("{v}", value) if value else template
        spans = []
        if value:
            start = text.index(value)
            spans.append({"type": kind, "start": start, "end": start + len(value), "value": value})
        rows.append({"text": text, "spans": spans})
    return rows


def pii_zh(rows: list[dict], tagger) -> dict:  # noqa: ANN001
    gold = [[(s["type"], s["start"], s["end"]) for s in r["spans"]] for r in rows]
    pred = [[(s.type, s.start, s.end) for s in find_pii(r["text"], tagger)] for r in rows]
    return {
        "samples": len(rows),
        **{str(iou): span_scores(gold, pred, iou) for iou in (0.7, 0.9)},
    }


# ------------------------------------------------------------------ vault
def vault_round_trip(texts: list[str], tagger) -> dict:  # noqa: ANN001
    """Mask each text with a vault, then reveal it: the original must come back exactly."""
    with tempfile.TemporaryDirectory() as folder:
        vault = Vault("benchmark-vault-key-0123456789", Path(folder) / "v.db")
        masker = PIIMasker(vault=vault, tagger=tagger)
        masked_texts = tokens = exact = 0
        for text in texts:
            masked = masker.mask(text)
            if masked == text:
                continue
            masked_texts += 1
            tokens += len(TOKEN.findall(masked))
            exact += masker.vault.reveal_all(masked) == text
    return {
        "texts_with_pii": masked_texts,
        "tokens": tokens,
        "round_trip": exact / masked_texts if masked_texts else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--pii", type=Path, default=DATASETS / "pii_presidio_synth" / "visible.jsonl"
    )
    parser.add_argument("--offensive", type=Path, default=DATASETS / "cold" / "dev.csv")
    parser.add_argument(
        "--cluener", type=Path, default=DATASETS / "cluener2020" / "dev.jsonl", help="CLUENER rows"
    )
    parser.add_argument(
        "--clean",
        type=Path,
        action="append",
        help="clean text file (repeatable); default AFQMC dev and CAIS valid",
    )
    parser.add_argument(
        "--parts", default="throughput,false_positives,offensive,evasion,pii,cost,vault"
    )
    parser.add_argument(
        "--presidio-python",
        default=None,
        help="interpreter with presidio-analyzer installed, for the Presidio pattern baseline",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    clean = args.clean or [
        DATASETS / "afqmc" / "dev_visible.jsonl",
        DATASETS / "cais" / "valid.jsonl",
    ]
    parts = set(args.parts.split(","))
    needed = (
        [*clean, args.offensive] if parts & {"throughput", "false_positives", "offensive"} else []
    )
    if "pii" in parts:
        needed.append(args.pii)
    if not require_files(needed):
        return 2
    print("[bench] building engines ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    curated = GuardEngine.from_files()
    build_s = time.perf_counter() - start
    engines = {"kefu_curated": curated}
    if parts & {"false_positives", "offensive", "cost"}:
        engines["kefu_default"] = curated.with_classifier(default_classifier())
    tagger = default_tagger() if parts & {"pii", "cost", "vault"} else None
    if parts & {"throughput", "false_positives", "offensive"}:
        start = time.perf_counter()
        engines["kefu_full_raw_zh"] = GuardEngine(raw_zh_lexicon(), pinyin=False)
        print(
            f"[bench] full raw lexicon engine: {time.perf_counter() - start:.1f} s", file=sys.stderr
        )
    results: dict = {"build_s_curated": round(build_s, 2)}

    if "throughput" in parts:  # the lexicon path: the classifiers are measured under "cost"
        print("[bench] throughput ...", file=sys.stderr, flush=True)
        lexicon_engines = {k: v for k, v in engines.items() if k != "kefu_default"}
        results["throughput"] = r = throughput(lexicon_engines, args.offensive, clean)
        print(
            f"\nThroughput ({r['chars']:,} chars in {r['messages']:,} messages, "
            "normalisation included)"
        )
        rows = [
            [
                name,
                m["terms"],
                f"{m['batched_chars_per_s'] / 1e6:.2f} M",
                f"{m['per_message_chars_per_s'] / 1e6:.2f} M",
                m["ms_p50_500_chars"],
                m["ms_p95_500_chars"],
            ]
            for name, m in r["engines"].items()
        ]
        if r["pyahocorasick"]:
            p = r["pyahocorasick"]
            rows.append(
                [
                    "plain pyahocorasick, raw zh lexicon, no normalisation",
                    "-",
                    f"{p['batched_chars_per_s'] / 1e6:.2f} M",
                    f"{p['per_message_chars_per_s'] / 1e6:.2f} M",
                    "-",
                    "-",
                ]
            )
        print(
            table(
                [
                    "engine",
                    "keys",
                    "chars/s batched",
                    "chars/s per message",
                    "p50 ms / 500 chars",
                    "p95 ms / 500 chars",
                ],
                rows,
            )
        )
    if "false_positives" in parts:
        print("[bench] false positives ...", file=sys.stderr, flush=True)
        results["false_positives"] = r = false_positives(engines, clean)
        print("\nFalse positives on clean text (share of texts)")
        rows = []
        for name, row in r.items():
            for engine in engines:
                rows.append(
                    [
                        name,
                        row["texts"],
                        engine,
                        row[engine]["any_hit"],
                        row[engine]["mask_or_block"],
                    ]
                )
        print(table(["clean set", "texts", "engine", "any hit", "mask/block"], rows))
    if "offensive" in parts:
        print("[bench] offensive ...", file=sys.stderr, flush=True)
        results["offensive"] = r = offensive(engines, args.offensive)
        print(
            f"\nOffensive text ({args.offensive.parent.name}/{args.offensive.name}, "
            f"{r['rows']} rows; report only)"
        )
        print(
            table(
                ["engine", "accuracy", "macro F1", "recall on offensive", "hit rate on safe"],
                [
                    [
                        e,
                        r[e]["accuracy"],
                        r[e]["macro_f1"],
                        r[e]["recall_offensive"],
                        r[e]["hit_rate_safe"],
                    ]
                    for e in engines
                ],
            )
        )
    if "evasion" in parts:
        print("[bench] evasion ...", file=sys.stderr, flush=True)
        results["evasion"] = r = evasion(curated)
        print(
            f"\nEvasion suite ({r['words_per_language']} words per language, "
            "seeded sample of the shipped lexicons)"
        )
        print(
            table(
                ["technique", "cases", "caught", "missed (first 5)"],
                [
                    [k, v["cases"], v["caught"], ", ".join(v["missed"])]
                    for k, v in r["categories"].items()
                ],
            )
        )
    if "pii" in parts:
        print("[bench] PII ...", file=sys.stderr, flush=True)
        results["pii_presidio"] = r = pii_presidio(args.pii, tagger, args.presidio_python)
        print(
            f"\nPII spans, {args.pii.parent.name}/{args.pii.name} "
            f"({r['samples']} samples, {r['ms_per_sample']} ms each)"
        )
        rows = []
        for iou in ("0.7", "0.9"):
            for system in ("kefu", "kefu_rules", "presidio_patterns"):
                scores = r[system][iou] if r.get(system) else None
                if not scores:
                    rows.append([iou, system, "not run (--presidio-python)", "", "", ""])
                    continue
                for group in ("structured", "all"):
                    m = scores[group]
                    rows.append([iou, system, group, m["precision"], m["recall"], m["f2"]])
        print(table(["IoU", "system", "types", "precision", "recall", "F2"], rows))
        print(
            table(
                ["type (IoU 0.7)", "support", "precision", "recall", "F2"],
                [
                    [k, m["support"], m["precision"], m["recall"], m["f2"]]
                    for k, m in r["kefu"]["0.7"]["per_type"].items()
                ],
            )
        )
        if args.cluener.is_file():
            results["pii_cluener"] = r = pii_cluener(args.cluener, tagger)
            print(f"\nNames and addresses, {args.cluener.parent.name}/{args.cluener.name} (exact)")
            print(
                table(
                    ["type", "support", "precision", "recall", "F1"],
                    [
                        [k, m["support"], m["precision"], m["recall"], m["f1"]]
                        for k, m in r.items()
                        if k != "rows"
                    ],
                )
            )
        results["pii_zh_generated"] = r = pii_zh(zh_pii_set(), tagger)
        print(
            f"\nPII spans, generated Chinese set ({r['samples']} messages, "
            "incl. look-alike decoys), IoU 0.7"
        )
        print(
            table(
                ["type", "support", "precision", "recall", "F2"],
                [
                    [k, m["support"], m["precision"], m["recall"], m["f2"]]
                    for k, m in r["0.7"]["per_type"].items()
                ],
            )
        )
    if "cost" in parts:
        print("[bench] cost per message ...", file=sys.stderr, flush=True)
        results["cost"] = r = guard_cost(engines["kefu_default"], tagger, args.offensive, args.pii)
        print("\nGuard cost per 500-character message, classifiers on (ms)")
        print(
            table(
                [
                    "language",
                    "messages",
                    "total p50",
                    "total p95",
                    "lexicons+classifier p95",
                    "PII p95",
                ],
                [
                    [
                        k,
                        m["messages"],
                        m["total_ms_50"],
                        m["total_ms_95"],
                        m["lexicons_and_classifier_ms_95"],
                        m["pii_ms_95"],
                    ]
                    for k, m in r.items()
                ],
            )
        )
    if "vault" in parts:
        rows = zh_pii_set() + (read_jsonl(args.pii) if args.pii.is_file() else [])
        results["vault"] = v = vault_round_trip([r["text"] for r in rows], tagger)
        print(
            f"\nVault round trip: {v['texts_with_pii']} texts with personal data, "
            f"{v['tokens']} tokens, {v['round_trip']:.1%} restored exactly"
        )
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
