"""NLU benchmark: Kefu's transformer intent/entity component vs Rasa's default DIET pipeline.

    .venv/bin/python benchmarks/nlu.py --json benchmarks/results/nlu.json        # every dataset
    .venv/bin/python benchmarks/nlu.py --datasets banking77-10shot --seeds 1,2,3 --epochs 10
    .venv/bin/python benchmarks/nlu.py --train T.csv --test S.csv --lang en --json out.json

Each dataset of ``$KEFU_DATASETS`` (or any ``--train``/``--test`` pair in the same formats, a
relative path looked up in ``KEFU_DATASETS`` when it is not a file here: CSV ``text,label``;
JSONL ``{tokens, tags (BIO), intent}``, ``{text, chars, tags (BIOES), intent}``,
``{text, intent, entities: [{type, start, end}]}`` or CIC's ``{text, label, label_des}`` with
``label_des`` as the intent; an optional ``domain`` is joined to the intent as
``domain.intent``) is converted to Rasa NLU training data with entities as character spans.
Every (dataset, system, seed) is trained with ``rasa.model_training.train_nlu`` and parsed
message by message through ``Agent.parse_message`` in its own subprocess, so both systems take
the same Rasa path and peak RSS is per system.

Metrics: intent accuracy, macro-F1 over the test set's intents, entity F1 (exact span + type,
micro) where the test set has entities, train wall time (``train_nlu``), p50/p95 latency of a
single parse, peak RSS of the subprocess. With an ``oos`` label (CLINC150) the intent is trained
as ``out_of_scope``; in-scope accuracy and OOS recall are reported with oos as a class and with a
confidence threshold chosen on a slice held back from TRAIN (never on the test split).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import DATASETS, dataset_path, offline_env, percentile, read_jsonl, table, write_json

OOS = "oos"
OOS_INTENT = "out_of_scope"

# name -> (language, train file, test file, shots per intent or None)
BENCHMARKS: dict[str, tuple[str, str, str, int | None]] = {
    "banking77": ("en", "banking77/train.csv", "banking77/test.csv", None),
    "banking77-10shot": ("en", "banking77/train.csv", "banking77/test.csv", 10),
    "hwu64-10shot": ("en", "hwu64/train.csv", "hwu64/test.csv", 10),
    "clinc150": ("en", "clinc150/train.csv", "clinc150/val.csv", None),
    "snips": ("en", "snips/train.jsonl", "snips/test.jsonl", None),
    "atis": ("en", "atis/train.jsonl", "atis/test.jsonl", None),
    "cais": ("zh", "cais/train.jsonl", "cais/valid.jsonl", None),
    "smp2019": ("zh", "smp2019/train.jsonl", "smp2019/test.jsonl", None),
}

# Rasa 3.6's default pipeline (what `rasa init` writes), without FallbackClassifier (it would
# replace low-confidence intents) and ResponseSelector (no responses here).
DIET_PIPELINE = """\
language: {lang}
pipeline:
  - name: {tokenizer}
  - name: RegexFeaturizer
  - name: LexicalSyntacticFeaturizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: {epochs}
    constrain_similarities: true
    random_seed: {seed}
  - name: EntitySynonymMapper
"""

Example = dict[str, Any]  # {"text": str, "intent": str, "entities": [{start, end, entity}]}


# ---------------------------------------------------------------------- data conversion
def bio_spans(pieces: list[tuple[int, int]], tags: list[str]) -> list[dict]:
    """Character spans from BIO or BIOES tags over pieces given as (start, end) offsets."""
    spans: list[dict] = []
    current: dict | None = None
    for (start, end), tag in zip(pieces, tags, strict=True):
        prefix, _, label = tag.partition("-")
        if prefix in ("B", "S") or (
            prefix in ("I", "E") and (not current or current["entity"] != label)
        ):
            current = {"start": start, "end": end, "entity": label}
            spans.append(current)
        elif prefix in ("I", "E") and current:
            current["end"] = end
        else:  # "O"
            current = None
        if prefix in ("E", "S"):
            current = None
    return spans


def convert_jsonl_row(row: dict) -> Example:
    """One JSONL row of the shared formats as an example with character-span entities."""
    if "intent" in row:
        intent = str(row["intent"])
    elif row.get("label_des") or "label" in row:  # CIC: the label's name, else its id
        intent = str(row.get("label_des") or row["label"])
    else:
        raise KeyError("'intent' (or CIC's 'label_des'/'label')")
    if row.get("domain"):
        intent = f"{row['domain']}.{intent}"
    if "tokens" in row:
        text, pieces, pos = "", [], 0
        for token in row["tokens"]:
            if text:
                text += " "
                pos += 1
            pieces.append((pos, pos + len(token)))
            text += token
            pos += len(token)
        return {"text": text, "intent": intent, "entities": bio_spans(pieces, row["tags"])}
    text = row["text"]
    if "chars" in row:
        pieces, pos = [], 0
        for char in row["chars"]:
            found = text.find(char, pos)
            if found < 0:
                raise ValueError(f"character {char!r} not found in {text!r}")
            pieces.append((found, found + len(char)))
            pos = found + len(char)
        return {"text": text, "intent": intent, "entities": bio_spans(pieces, row["tags"])}
    entities = [
        {
            "start": int(e["start"]),
            "end": int(e["end"]),
            "entity": str(e.get("type") or e["entity"]),
        }
        for e in row.get("entities") or []
    ]
    return {"text": text, "intent": intent, "entities": entities}


def load_examples(path: Path) -> list[Example]:
    """Examples from a CSV (``text,label``) or JSONL file; blank texts are skipped."""
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as f:
            rows = [
                {"text": r["text"], "intent": r["label"], "entities": []} for r in csv.DictReader(f)
            ]
    else:
        rows = [convert_jsonl_row(r) for r in read_jsonl(path)]
    return [r for r in rows if r["text"].strip()]


def by_intent(examples: list[Example]) -> dict[str, list[Example]]:
    """Examples grouped by intent (insertion order kept)."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        groups[e["intent"]].append(e)
    return groups


def sample_per_intent(examples: list[Example], k: int, seed: int) -> list[Example]:
    """At most ``k`` examples per intent, drawn with ``seed``."""
    rng = random.Random(seed)
    out = []
    for group in by_intent(examples).values():
        out += rng.sample(group, k) if len(group) > k else group
    return out


def stratified_sample(examples: list[Example], n: int, seed: int = 0) -> list[Example]:
    """About ``n`` examples keeping every intent's share (at least one each); fixed seed."""
    rng = random.Random(seed)
    out = []
    for group in by_intent(examples).values():
        k = max(1, round(n * len(group) / len(examples)))
        out += rng.sample(group, min(k, len(group)))
    return out


def hold_back(
    examples: list[Example], per_intent: int, oos_share: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split off ``per_intent`` examples of each in-scope intent and ``oos_share`` of oos."""
    rng = random.Random(seed + 1000)
    train, held = [], []
    for intent, group in by_intent(examples).items():
        group = list(group)
        rng.shuffle(group)
        n = round(oos_share * len(group)) if intent == OOS else per_intent
        held += group[:n]
        train += group[n:]
    return train, held


# ---------------------------------------------------------------------- metrics
def macro_f1(gold: list[str], pred: list[str]) -> float:
    """Macro-averaged F1 over the intents present in ``gold``."""
    scores = []
    for label in sorted(set(gold)):
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == p == label)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if p == label != g)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == label != p)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def entity_f1(gold: list[list[dict]], pred: list[list[dict]]) -> dict:
    """Micro precision/recall/F1 of entities, exact (start, end, type) match."""
    tp = n_gold = n_pred = 0
    for g, p in zip(gold, pred, strict=True):
        gs = {(e["start"], e["end"], e["entity"]) for e in g}
        ps = {(e["start"], e["end"], e["entity"]) for e in p}
        tp += len(gs & ps)
        n_gold += len(gs)
        n_pred += len(ps)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def oos_scores(gold: list[str], pred: list[str], conf: list[float], threshold: float) -> dict:
    """In-scope accuracy and OOS recall when low confidence (< threshold) also means oos."""
    final = [OOS if p == OOS or c < threshold else p for p, c in zip(pred, conf, strict=True)]
    ins = [(g, f) for g, f in zip(gold, final, strict=True) if g != OOS]
    oos = [f for g, f in zip(gold, final, strict=True) if g == OOS]
    return {
        "threshold": threshold,
        "in_scope_acc": sum(g == f for g, f in ins) / len(ins) if ins else 0.0,
        "oos_recall": sum(f == OOS for f in oos) / len(oos) if oos else 0.0,
        "oos_precision": (
            sum(1 for g, f in zip(gold, final, strict=True) if f == OOS == g)
            / max(1, sum(1 for f in final if f == OOS))
        ),
        "accuracy": sum(g == f for g, f in zip(gold, final, strict=True)) / len(gold),
    }


def pick_threshold(gold: list[str], pred: list[str], conf: list[float]) -> float:
    """Threshold maximising (in-scope acc + OOS recall) / 2 on the held-back slice."""
    candidates = [0.0] + sorted({round(c, 3) for c in conf})
    best, best_score = 0.0, -1.0
    for t in candidates:
        s = oos_scores(gold, pred, conf, t)
        score = (s["in_scope_acc"] + s["oos_recall"]) / 2
        if score > best_score:
            best, best_score = t, score
    return best


def score(test: list[Example], child: dict, dev: list[Example] | None) -> dict[str, Any]:
    """All metrics of one trained system from its predictions."""
    gold = [e["intent"] for e in test]
    preds = child["predictions"]
    pred = [OOS if p["intent"] == OOS_INTENT else (p["intent"] or "") for p in preds]
    out: dict[str, Any] = {
        "accuracy": sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold),
        "macro_f1": macro_f1(gold, pred),
        "train_s": child["train_s"],
        "load_s": child["load_s"],
        "parse_ms_p50": percentile(child["latency_ms"], 50),
        "parse_ms_p95": percentile(child["latency_ms"], 95),
        "peak_rss_mb": child["peak_rss_mb"],
        "train_examples": child["train_examples"],
        "test_examples": len(test),
    }
    if any(e["entities"] for e in test) and not child.get("intents_only"):
        out["entity"] = entity_f1([e["entities"] for e in test], [p["entities"] for p in preds])
    if OOS in gold:
        conf = [p["confidence"] for p in preds]
        out["oos_as_class"] = oos_scores(gold, pred, conf, 0.0)
        if dev:
            dgold = [e["intent"] for e in dev]
            dpred = [
                OOS if p["intent"] == OOS_INTENT else (p["intent"] or "")
                for p in child["dev_predictions"]
            ]
            threshold = pick_threshold(
                dgold, dpred, [p["confidence"] for p in child["dev_predictions"]]
            )
            out["oos_threshold"] = oos_scores(gold, pred, conf, threshold)
    return out


# ---------------------------------------------------------------------- child process
def rasa_json(examples: list[Example]) -> dict:
    """Rasa NLU training data (JSON format) with entity values from the spans."""
    common = []
    for e in examples:
        intent = OOS_INTENT if e["intent"] == OOS else e["intent"]
        entities = [{**s, "value": e["text"][s["start"] : s["end"]]} for s in e["entities"]]
        common.append({"text": e["text"], "intent": intent, "entities": entities})
    return {"rasa_nlu_data": {"common_examples": common}}


def kefu_config(spec: dict) -> str:
    """Pipeline with only Kefu's component (it tokenises by itself)."""
    options = {"epochs": spec["epochs"], "random_seed": spec["seed"], **spec["kefu_options"]}
    lines = [f"language: {spec['lang']}", "pipeline:"]
    lines.append(
        "  - name: components.nlu.intent_entity_classifier.TransformerIntentEntityClassifier"
    )
    lines += [f"    {k}: {json.dumps(v)}" for k, v in options.items()]
    return "\n".join(lines) + "\n"


def run_child(spec_path: Path) -> None:
    """Train one system on one split, parse every test message, write predictions + timings."""
    import resource

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    os.environ.setdefault("RASA_MAX_CACHE_SIZE", "0")  # no graph cache between runs
    if spec.get("threads"):  # before torch / TensorFlow start their thread pools
        for key in (
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
            "TF_INTRA_OP_PARALLELISM_THREADS",
            "TF_INTER_OP_PARALLELISM_THREADS",
        ):
            os.environ[key] = str(spec["threads"])
    offline_env()
    import asyncio
    import logging

    logging.disable(logging.WARNING)
    if spec.get("threads"):
        import torch

        torch.set_num_threads(spec["threads"])
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu

    work = Path(spec["workdir"])
    nlu = work / "nlu.json"
    nlu.write_text(json.dumps(rasa_json(spec["train"]), ensure_ascii=False), encoding="utf-8")
    config = work / "config.yml"
    if spec["system"] == "diet":
        tokenizer = "JiebaTokenizer" if spec["lang"] == "zh" else "WhitespaceTokenizer"
        config.write_text(
            DIET_PIPELINE.format(
                lang=spec["lang"], tokenizer=tokenizer, epochs=spec["epochs"], seed=spec["seed"]
            ),
            encoding="utf-8",
        )
    else:
        config.write_text(kefu_config(spec), encoding="utf-8")
    started = time.perf_counter()
    model = train_nlu(str(config), str(nlu), str(work / "models"), fixed_model_name="nlu")
    train_s = time.perf_counter() - started
    if not model:
        raise SystemExit("training failed")
    started = time.perf_counter()
    agent = Agent.load(model)
    load_s = time.perf_counter() - started
    loop = asyncio.new_event_loop()

    def parse(text: str) -> dict:
        result = loop.run_until_complete(agent.parse_message(text))
        intent = result.get("intent") or {}
        return {
            "intent": intent.get("name"),
            "confidence": float(intent.get("confidence") or 0.0),
            "entities": [
                {"start": e["start"], "end": e["end"], "entity": e["entity"]}
                for e in result.get("entities") or []
            ],
        }

    parse("warm up")
    predictions, latency = [], []
    for i, example in enumerate(spec["test"], 1):
        t0 = time.perf_counter()
        predictions.append(parse(example["text"]))
        latency.append((time.perf_counter() - t0) * 1000)
        if i % 500 == 0:
            print(f"  parsed {i}/{len(spec['test'])}", file=sys.stderr, flush=True)
    dev_predictions = [parse(e["text"]) for e in spec.get("dev") or []]
    result = {
        "train_s": train_s,
        "load_s": load_s,
        "train_examples": len(spec["train"]),
        "predictions": predictions,
        "dev_predictions": dev_predictions,
        "latency_ms": latency,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    (work / "result.json").write_text(json.dumps(result), encoding="utf-8")


def tfidf_reference(train: list[Example], test: list[Example], dev: list[Example] | None) -> dict:
    """A linear reference: character 1-3-gram TF-IDF + logistic regression (intents only).

    Not a Rasa pipeline (no entities, no Rasa overhead in its timings): a floor that tells how
    much of a dataset is keyword matching.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
    features = vectorizer.fit_transform([e["text"] for e in train])
    labels = [OOS_INTENT if e["intent"] == OOS else e["intent"] for e in train]
    model = LogisticRegression(C=10.0, max_iter=2000).fit(features, labels)
    train_s = time.perf_counter() - started

    def predict(example: Example) -> dict:
        probs = model.predict_proba(vectorizer.transform([example["text"]]))[0]
        best = int(probs.argmax())
        return {"intent": model.classes_[best], "confidence": float(probs[best]), "entities": []}

    predictions, latency = [], []
    for example in test:
        t0 = time.perf_counter()
        predictions.append(predict(example))
        latency.append((time.perf_counter() - t0) * 1000)
    return {
        "train_s": train_s,
        "load_s": 0.0,
        "train_examples": len(train),
        "predictions": predictions,
        "dev_predictions": [predict(e) for e in dev or []],
        "latency_ms": latency,
        "peak_rss_mb": 0.0,
        "intents_only": True,
    }


# ---------------------------------------------------------------------- parent
def train_and_score(
    system: str,
    lang: str,
    train: list[Example],
    test: list[Example],
    dev: list[Example] | None,
    epochs: int,
    seed: int,
    kefu_options: dict,
    threads: int | None = None,
) -> dict:
    """Run one (system, split) in a fresh subprocess and score its predictions."""
    if system == "tfidf":
        started = time.monotonic()
        out = score(test, tfidf_reference(train, test, dev), dev)
        out["wall_s"] = time.monotonic() - started
        return out
    with tempfile.TemporaryDirectory(prefix="kefu-nlu-") as tmp:
        spec = {
            "system": system,
            "lang": lang,
            "train": train,
            "test": test,
            "dev": dev,
            "epochs": epochs,
            "seed": seed,
            "kefu_options": kefu_options,
            "threads": threads,
            "workdir": tmp,
        }
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,  # universal newlines: tqdm's carriage returns end lines too
        )
        tail: list[str] = []
        shown: set[str] = set()
        assert proc.stderr is not None
        for line in proc.stderr:  # live progress of the child, not the library noise
            line = line.rstrip()
            tail = (tail + [line])[-30:]
            epoch = re.search(r"Epochs:.*?\| *(\d+)/(\d+)", line)
            if epoch and "loss" in line:
                done, total = int(epoch.group(1)), int(epoch.group(2))
                if (done % 10 == 0 or done == total) and epoch.group(0) not in shown:
                    shown.add(epoch.group(0))
                    print(
                        f"   DIET epoch {done}/{total} ({time.monotonic() - started:.0f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
            elif line.startswith(("[kefu]", "  parsed")):
                print("   " + line[:200], file=sys.stderr, flush=True)
        proc.wait()
        wall = time.monotonic() - started
        result_path = Path(tmp) / "result.json"
        if proc.returncode or not result_path.is_file():
            text = "\n".join(tail)
            raise RuntimeError(f"{system} run failed (exit {proc.returncode}):\n{text}")
        child = json.loads(result_path.read_text(encoding="utf-8"))
    out = score(test, child, dev)
    out["wall_s"] = wall
    return out


def summarise(runs: list[dict]) -> dict:
    """Mean and sample standard deviation of every numeric metric over seeds."""

    def flat(d: dict, prefix: str = "") -> dict[str, float]:
        items: dict[str, float] = {}
        for k, v in d.items():
            if isinstance(v, dict):
                items.update(flat(v, f"{prefix}{k}."))
            elif isinstance(v, (int, float)):
                items[prefix + k] = float(v)
        return items

    flats = [flat(r) for r in runs]
    return {
        k: {
            "mean": statistics.mean(f[k] for f in flats),
            "std": statistics.stdev(f[k] for f in flats) if len(flats) > 1 else 0.0,
        }
        for k in flats[0]
    }


def benchmark(
    name: str,
    lang: str,
    train_path: Path,
    test_path: Path,
    shots: int | None,
    args: argparse.Namespace,
) -> dict:
    """Every system on one dataset (several seeds when few-shot)."""
    full_train = load_examples(train_path)
    test = load_examples(test_path)
    if args.test_limit and len(test) > args.test_limit:
        test = stratified_sample(test, args.test_limit)
    seeds = args.seeds if shots else args.seeds[:1]
    has_oos = any(e["intent"] == OOS for e in full_train)
    result: dict[str, Any] = {
        "lang": lang,
        "train_file": train_path.name,
        "test_file": test_path.name,
        "shots": shots,
        "limit_per_intent": args.limit,
        "test_examples": len(test),
        "seeds": seeds,
        "systems": {},
    }
    for system in args.systems:
        epochs = {"kefu": args.epochs, "diet": args.diet_epochs}.get(system, 0)
        runs = []
        for seed in seeds:
            train = sample_per_intent(full_train, shots, seed) if shots else list(full_train)
            dev = None
            if has_oos:
                train, dev = hold_back(train, args.holdout_per_intent, 0.2, seed)
            if args.limit:
                train = sample_per_intent(train, args.limit, seed)
            if args.train_limit and len(train) > args.train_limit:
                train = stratified_sample(train, args.train_limit, seed)
            print(
                f"[nlu] {name} {system} seed={seed}: train {len(train)}, test {len(test)}"
                + (f", held back {len(dev)}" if dev else "")
                + f", epochs {epochs}",
                file=sys.stderr,
                flush=True,
            )
            run = train_and_score(
                system, lang, train, test, dev, epochs, seed, args.kefu_options, args.threads
            )
            run["seed"] = seed
            runs.append(run)
            print(
                f"[nlu] {name} {system} seed={seed}: acc={run['accuracy']:.4f} "
                f"train {run['train_s']:.0f} s, wall {run['wall_s']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        result["systems"][system] = {"epochs": epochs, "runs": runs, "summary": summarise(runs)}
    return result


def fmt(summary: dict, key: str, scale: float = 100.0, digits: int = 1) -> str:
    """``mean`` (``± std`` over seeds) of a summarised metric, or ``—``."""
    if key not in summary:
        return "—"
    m, s = summary[key]["mean"] * scale, summary[key]["std"] * scale
    return f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if s else "")


def render(results: dict) -> str:
    """One Markdown table over every dataset and system."""
    headers = [
        "dataset", "system", "train/test", "epochs", "acc %", "macro-F1 %", "entity F1 %",
        "in-scope % / OOS recall % (threshold)", "train s", "p50 / p95 ms", "peak RSS MiB",
    ]  # fmt: skip
    rows = []
    for name, ds in results["datasets"].items():
        for system, sys_result in ds["systems"].items():
            s = sys_result["summary"]
            oos = "—"
            if "oos_threshold.in_scope_acc" in s:
                oos = (
                    f"{fmt(s, 'oos_threshold.in_scope_acc')} / {fmt(s, 'oos_threshold.oos_recall')}"
                    f" (t={fmt(s, 'oos_threshold.threshold', 1, 2)}); as class "
                    f"{fmt(s, 'oos_as_class.in_scope_acc')} / {fmt(s, 'oos_as_class.oos_recall')}"
                )
            runs = sys_result["runs"]
            rows.append([
                name + (f" ({len(runs)} seeds)" if len(runs) > 1 else ""),
                system,
                f"{runs[0]['train_examples']}/{runs[0]['test_examples']}",
                sys_result["epochs"] or "—",
                fmt(s, "accuracy"),
                fmt(s, "macro_f1"),
                fmt(s, "entity.f1"),
                oos,
                fmt(s, "train_s", 1, 0),
                f"{fmt(s, 'parse_ms_p50', 1, 1)} / {fmt(s, 'parse_ms_p95', 1, 1)}",
                fmt(s, "peak_rss_mb", 1, 0) if system != "tfidf" else "—",
            ])  # fmt: skip
    return table(headers, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (exit 2 with a message on bad ones)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=",".join(BENCHMARKS), help="comma-separated")
    parser.add_argument(
        "--systems",
        default="kefu,diet",
        help="comma-separated: kefu, diet, tfidf (a linear char-n-gram reference, intents only)",
    )
    parser.add_argument("--train", type=Path, help="own training file (CSV or JSONL)")
    parser.add_argument("--test", type=Path, help="own test file (CSV or JSONL)")
    parser.add_argument("--name", default=None, help="name of the --train/--test dataset")
    parser.add_argument("--lang", default="en", choices=["en", "zh"], help="for --train/--test")
    parser.add_argument("--shots", type=int, default=None, help="few-shot K for --train/--test")
    parser.add_argument("--limit", type=int, default=None, help="max train examples per intent")
    parser.add_argument(
        "--train-limit", type=int, default=None,
        help="max train examples in all, keeping each intent's share (skewed data, e.g. CAIS)",
    )  # fmt: skip
    parser.add_argument("--test-limit", type=int, default=None, help="max test messages")
    parser.add_argument("--epochs", type=int, default=15, help="Kefu epochs (its default: 15)")
    parser.add_argument("--diet-epochs", type=int, default=100, help="DIET epochs (default 100)")
    parser.add_argument("--seeds", default="1,2,3", help="few-shot samples (one seed otherwise)")
    parser.add_argument(
        "--holdout-per-intent", type=int, default=5,
        help="with oos: in-scope train examples per intent held back to pick the threshold",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=int, default=None,
        help="CPU threads of torch / TensorFlow in each run (default: their own choice)",
    )  # fmt: skip
    parser.add_argument("--kefu-option", action="append", default=[], metavar="KEY=JSON")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--merge", action="store_true", help="update datasets in --json file")
    args = parser.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if not args.systems or set(args.systems) - {"kefu", "diet", "tfidf"}:
        parser.error("--systems takes kefu, diet and/or tfidf")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        args.kefu_options = {
            k: json.loads(v) for k, _, v in (o.partition("=") for o in args.kefu_option)
        }
    except ValueError as exc:
        parser.error(f"bad --seeds or --kefu-option: {exc}")
    if not args.seeds:
        parser.error("--seeds needs at least one seed")
    for key in ("limit", "train_limit", "test_limit", "epochs", "diet_epochs", "shots", "threads"):
        value = getattr(args, key)
        if value is not None and value < 1:
            parser.error(f"--{key.replace('_', '-')} must be a positive integer")
    if bool(args.train) != bool(args.test):
        parser.error("--train and --test go together")
    if args.train:
        args.train, args.test = dataset_path(args.train), dataset_path(args.test)
        for path in (args.train, args.test):
            if not path.is_file():
                parser.error(f"{path} not found")
            if path.suffix not in (".csv", ".jsonl"):
                parser.error(f"{path}: expected a .csv or .jsonl file")
        args.jobs = [
            (args.name or args.train.parent.name, args.lang, args.train, args.test, args.shots)
        ]
    else:
        names = [n.strip() for n in args.datasets.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown or not names:
            parser.error(f"unknown dataset(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
        args.jobs = []
        for n in names:
            lang, train, test, shots = BENCHMARKS[n]
            paths = (DATASETS / train, DATASETS / test)
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                parser.error(f"{', '.join(missing)} not found (set KEFU_DATASETS)")
            args.jobs.append((n, lang, *paths, shots))
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table on stdout, progress on stderr."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"] and len(argv) == 2:
        run_child(Path(argv[1]))
        return 0
    args = parse_args(argv)
    results: dict[str, Any] = {"datasets": {}}
    if args.merge and args.json and args.json.is_file():
        results = json.loads(args.json.read_text(encoding="utf-8"))
    results.setdefault("commands", []).append("benchmarks/nlu.py " + " ".join(argv))
    results["machine"] = {"cpus": os.cpu_count()}
    for name, lang, train, test, shots in args.jobs:
        started = time.monotonic()
        try:
            results["datasets"][name] = benchmark(name, lang, train, test, shots, args)
        except (ValueError, KeyError) as exc:
            print(f"error: {name}: cannot read the data: {exc}", file=sys.stderr)
            return 2
        results["datasets"][name]["settings"] = {
            "kefu_epochs": args.epochs,
            "diet_epochs": args.diet_epochs,
            "limit_per_intent": args.limit,
            "train_limit": args.train_limit,
            "test_limit": args.test_limit,
            "kefu_options": args.kefu_options,
            "holdout_per_intent": args.holdout_per_intent,
            "threads": args.threads,
        }
        results["datasets"][name]["wall_s"] = time.monotonic() - started
        write_json(args.json, results)  # partial results survive a later failure
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
