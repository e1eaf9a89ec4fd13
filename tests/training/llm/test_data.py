"""The fine-tuning data builders: checked pairs, deterministic, held-out benchmark values."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from components.assistants import Assistant
from components.nlg.fact_check import check_rephrase
from components.nlg.prompt import SYSTEM_PROMPT, template_of
from components.paths import PROJECT_ROOT
from knowledge.answering import AnswerComposer, is_decline, passages_of
from training.llm import data
from training.paths import datasets_dir

HAVE_DATASETS = all(p.is_file() for p in data.required_files(datasets_dir()))


def _benchmark_module():
    path = PROJECT_ROOT / "benchmarks" / "llm.py"
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location("kefu_bench_llm", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(path.parent))


def test_frame_examples_keep_every_fact_and_change_the_wording():
    examples = list(data.frame_examples(200, seed=3, customers=["where is my parcel?"]))
    assert len(examples) == 200
    for example in examples:
        system, _, reply = example.messages
        assert system["content"].startswith(SYSTEM_PROMPT)
        template = template_of(example.messages)
        assert reply["content"] != template
        assert check_rephrase(template, reply["content"]) == []
    languages = {e.source for e in examples if e.source.startswith("frame:zh_")}
    assert languages, "Chinese frames are part of the mix"


def test_the_same_seed_builds_the_same_examples():
    first = [e.to_json() for e in data.frame_examples(30, seed=5, customers=["a", "b"])]
    again = [e.to_json() for e in data.frame_examples(30, seed=5, customers=["a", "b"])]
    other = [e.to_json() for e in data.frame_examples(30, seed=6, customers=["a", "b"])]
    assert first == again != other


def test_benchmark_templates_and_slot_values_are_held_out():
    bench = _benchmark_module()
    data.assert_disjoint(
        [*bench.TEMPLATES.values(), *bench.TEMPLATES_ZH.values()], bench.ITEMS + bench.ITEMS_ZH
    )
    with pytest.raises(AssertionError, match="benchmark templates"):
        data.assert_disjoint([data.FRAMES["price"][0]], [])
    with pytest.raises(AssertionError, match="items"):
        data.assert_disjoint([], [data.ITEMS[0]])


def test_domain_responses_become_examples_in_their_language():
    examples = list(data.domain_examples(Assistant("shop").domain, 1, ["hi"]))
    assert examples
    assert any("\u4e00" <= ch <= "\u9fff" for e in examples for ch in template_of(e.messages))
    for example in examples:
        assert check_rephrase(template_of(example.messages), example.messages[-1]["content"]) == []


@pytest.mark.skipif(not HAVE_DATASETS, reason="needs KEFU_DATASETS")
def test_build_splits_by_group_and_grounded_answers_pass_the_composer_checks(tmp_path):
    split = data.build(datasets_dir(), 120, 60, seed=2, eval_share=0.2, progress=False)
    train_groups = {(e.task, e.group) for e in split["train"]}
    eval_groups = {(e.task, e.group) for e in split["eval"]}
    assert split["eval"] and not train_groups & eval_groups
    grounded = [e for e in split["train"] + split["eval"] if e.task == "grounded"]
    declines = [e for e in grounded if is_decline(e.messages[-1]["content"])]
    assert 0 < len(declines) < len(grounded)
    composer = AnswerComposer()
    for example in grounded:
        answer = example.messages[-1]["content"]
        if not is_decline(answer):
            assert composer.check(answer, passages_of(example.messages))[1] == ""
    counts = data.write(split, tmp_path)
    assert counts["train"]["rephrase"] + counts["eval"].get("rephrase", 0) >= 100
    back = data.read(tmp_path / "train.jsonl")
    assert [e.to_json() for e in back] == [e.to_json() for e in split["train"]]
    row = json.loads((tmp_path / "train.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(row) == {"task", "source", "group", "messages"}


def test_passages_of_reads_back_the_numbered_passages():
    from knowledge.answering import grounded_messages

    passages = ["Refunds take 3 days.", "Shipping is free over 99 CNY.\nReally."]
    example = data.Example(
        "grounded",
        "t",
        "g",
        [*grounded_messages("refund?", passages), {"role": "assistant", "content": "x"}],
    )
    assert passages_of(example.messages) == passages


def test_cli_reports_missing_datasets(tmp_path, monkeypatch, capsys):
    from training.llm.cli import main

    monkeypatch.setenv("KEFU_DATASETS", str(tmp_path / "nowhere"))
    assert main(["data", "--out", str(tmp_path / "out")]) == 2
    assert "KEFU_DATASETS" in capsys.readouterr().err
    assert not Path(tmp_path / "out").exists()
