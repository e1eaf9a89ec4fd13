"""The encoder fine-tuning's data: sources, hard negatives, the THS split, deterministic batches."""

from __future__ import annotations

import json

from training.encoders.e5_finetune import Batches, FinetuneConfig, Pair, load_pairs, ths_trained


def write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def fake_datasets(root):
    write(
        root / "zh_pairs" / "bq_train.jsonl",
        [
            {"s1": "怎么还款", "s2": "如何还钱", "label": 1},
            {"s1": "怎么还款", "s2": "怎么借款", "label": 0},
            {"s1": "额度多少", "s2": "我能借多少", "label": 1},
        ],
    )
    write(root / "zh_pairs" / "lcqmc_dev.jsonl", [{"s1": "测试一", "s2": "测试二", "label": 1}])
    write(
        root / "ths_faq" / "faq.jsonl",
        [{"faq_id": f"ths{i:03d}", "question": f"标准问题{i}"} for i in range(30)],
    )
    write(
        root / "ths_faq" / "queries.jsonl",
        [{"query": f"用户问法{i}", "faq_id": f"ths{i:03d}"} for i in range(30)],
    )
    write(
        root / "cic" / "train.jsonl",
        [
            {"text": t, "label_des": lab}
            for t, lab in [
                ("改地址", "地址"),
                ("地址改一下", "地址"),
                ("退款", "退款"),
                ("钱退了吗", "退款"),
            ]
        ],
    )


def test_pairs_keep_hard_negatives_and_never_read_dev_splits(tmp_path):
    fake_datasets(tmp_path)
    pairs = load_pairs(tmp_path, FinetuneConfig())
    bq = {p.anchor: p for p in pairs["bq"]}
    assert bq["怎么还款"].negative == "怎么借款"
    assert bq["额度多少"].negative is None
    texts = {t for ps in pairs.values() for p in ps for t in (p.anchor, p.positive)}
    assert "测试一" not in texts  # LCQMC dev is a benchmark, never training data


def test_ths_keeps_a_third_of_the_standard_questions_out(tmp_path):
    fake_datasets(tmp_path)
    config = FinetuneConfig()
    pairs = load_pairs(tmp_path, config)
    trained = {p.positive for p in pairs["ths"]}
    kept_out = [i for i in range(30) if not ths_trained(f"ths{i:03d}", config.ths_train_share)]
    assert kept_out and all(f"标准问题{i}" not in trained for i in kept_out)
    assert all(p.asymmetric for p in pairs["ths"])
    assert Pair("问", "答", asymmetric=True).texts()[1].startswith("passage: ")
    # the split is a fixed function of the id (the benchmark computes the same one)
    assert [ths_trained(f"ths{i:03d}", 2 / 3) for i in range(30)] == [
        ths_trained(f"ths{i:03d}", 2 / 3) for i in range(30)
    ]


def test_batches_depend_only_on_the_step(tmp_path):
    fake_datasets(tmp_path)
    config = FinetuneConfig(batch_pairs=4)
    pairs = load_pairs(tmp_path, config)
    one, two = Batches(pairs, config), Batches(pairs, config)
    assert one.batch(7) == two.batch(7)
    for pair in one.batch(3):
        assert pair.anchor != pair.positive
