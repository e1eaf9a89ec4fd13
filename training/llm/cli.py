"""Fine-tune the bundled LLM: build data, train a LoRA adapter, evaluate, merge, export logs.

    python -m training finetune data      # -> KEFU_HOME/finetune/data/{train,eval}.jsonl
    python -m training finetune train     # -> components/llm/artifacts/smollm2-kefu-lora
    python -m training finetune evaluate  # base vs tuned on the held-back examples
    python -m training finetune merge --out DIR   # a plain folder for llm.model_path
    python -m training finetune export --url sqlite:///.kefu/tracker.db --out convs.jsonl

Hyper-parameters: :class:`~training.llm.config.FinetuneConfig` (``--config FILE``
overrides them from YAML). ``make finetune`` runs data + train + evaluate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from components.errors import KefuError
from components.paths import kefu_home


def _data_dir(value: str | None) -> Path:
    return Path(value) if value else kefu_home() / "finetune" / "data"


def _cmd_data(args: argparse.Namespace) -> int:
    from training.llm import data
    from training.llm.config import FinetuneConfig
    from training.paths import datasets_dir

    config = FinetuneConfig.from_file(args.config, seed=args.seed)
    datasets = datasets_dir()
    missing = [str(p) for p in data.required_files(datasets) if not p.is_file()]
    if missing:
        print(f"error: missing {', '.join(missing)}: set KEFU_DATASETS", file=sys.stderr)
        return 2
    split = data.build(
        datasets, config.rephrase_examples, config.grounded_examples, config.seed, config.eval_share
    )
    out = _data_dir(args.out)
    counts = data.write(split, out)
    print(f"[finetune] wrote {out}: {json.dumps(counts)}", file=sys.stderr)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from components.llm.adapter import ADAPTER_DIR, ADAPTER_FILE, CHECKSUM_FILE
    from training.llm import data
    from training.llm.config import FinetuneConfig
    from training.llm.train import train

    config = FinetuneConfig.from_file(args.config, seed=args.seed, max_minutes=args.max_minutes)
    folder = _data_dir(args.data)
    if not (folder / "train.jsonl").is_file():
        print(
            f"error: no {folder / 'train.jsonl'}: run 'python -m training finetune data' first",
            file=sys.stderr,
        )
        return 2
    train_examples = data.read(folder / "train.jsonl")
    for extra in args.extra or []:
        train_examples += data.read(Path(extra))
    eval_file = folder / "eval.jsonl"
    eval_examples = data.read(eval_file) if eval_file.is_file() else []
    out = Path(args.out) if args.out else ADAPTER_DIR
    report = train(
        config,
        train_examples,
        eval_examples,
        out,
        Path(args.model_path) if args.model_path else None,
    )
    if out == ADAPTER_DIR:
        from components.checksums import write_checksum

        write_checksum(out / ADAPTER_FILE, CHECKSUM_FILE)
    print(f"[finetune] adapter in {out}: {json.dumps(report)}", file=sys.stderr)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from components.llm.transformers_backend import TransformersBackend
    from training.llm import data
    from training.llm.evaluate import task_metrics

    folder = _data_dir(args.data)
    if not (folder / "eval.jsonl").is_file():
        print(f"error: no {folder / 'eval.jsonl'}: run the 'data' step first", file=sys.stderr)
        return 2
    examples = data.read(folder / "eval.jsonl")[: args.limit]
    results = {}
    for label, adapter in (("base", "none"), ("tuned", args.adapter)):
        print(f"[finetune] evaluating {label} on {len(examples)} examples", file=sys.stderr)
        results[label] = task_metrics(TransformersBackend(adapter=adapter), examples)
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from components.llm.adapter import ADAPTER_DIR
    from training.llm.train import merge

    adapter = Path(args.adapter) if args.adapter else ADAPTER_DIR
    if not (adapter / "adapter_config.json").is_file():
        print(f"error: no adapter at {adapter}: train one first", file=sys.stderr)
        return 2
    out = merge(adapter, Path(args.out))
    print(f"[finetune] merged model in {out} (set llm.model_path to it)", file=sys.stderr)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from training.llm.export import export

    counts = export(args.url, Path(args.out), args.min_turns)
    print(f"[finetune] wrote {args.out}: {json.dumps(counts)}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m training finetune ...`` (see the module docstring).

    Args:
        argv: The arguments after ``finetune`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 for missing inputs or a bad setting.
    """
    parser = argparse.ArgumentParser(
        prog="python -m training finetune", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("data", help="build train/eval JSONL from the project and public datasets")
    p.add_argument("--config", type=Path, default=None, help="YAML overriding FinetuneConfig")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="folder (default KEFU_HOME/finetune/data)")
    p.set_defaults(run=_cmd_data)
    p = sub.add_parser("train", help="train the LoRA adapter (resumes an interrupted run)")
    p.add_argument("--config", type=Path, default=None, help="YAML overriding FinetuneConfig")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock bound")
    p.add_argument("--data", default=None, help="folder with train.jsonl/eval.jsonl")
    p.add_argument("--extra", action="append", help="more JSONL examples (e.g. an export)")
    p.add_argument("--model-path", default=None, help="base model folder (default SmolLM2)")
    p.add_argument("--out", default=None, help="adapter folder (default: the shipped one)")
    p.set_defaults(run=_cmd_train)
    p = sub.add_parser("evaluate", help="base vs tuned task metrics on the held-back examples")
    p.add_argument("--data", default=None)
    p.add_argument("--adapter", default="auto", help="auto (the shipped one) or a folder")
    p.add_argument("--limit", type=int, default=None, help="first N examples only")
    p.add_argument("--json", default=None, help="also write the results here")
    p.set_defaults(run=_cmd_evaluate)
    p = sub.add_parser("merge", help="merge an adapter into the base, save a model folder")
    p.add_argument("--adapter", default=None, help="adapter folder (default: the shipped one)")
    p.add_argument("--out", required=True)
    p.set_defaults(run=_cmd_merge)
    p = sub.add_parser("export", help="masked tracker store -> chat-format SFT JSONL")
    p.add_argument("--url", required=True, help="SQLAlchemy URL, e.g. sqlite:///.kefu/tracker.db")
    p.add_argument("--out", required=True)
    p.add_argument("--min-turns", type=int, default=1, help="skip shorter conversations")
    p.set_defaults(run=_cmd_export)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (KefuError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
