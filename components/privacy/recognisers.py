"""Personal-data recognisers (zh + en): patterns plus validators, and :func:`find_pii`.

Recognisers are patterns plus validators, so a random 18-digit number is not a Chinese resident
ID unless its ISO 7064 MOD 11-2 check digit and birth date are valid, and a digit run is not a
bank card unless it passes Luhn. Types: ``EMAIL``, ``CN_ID``, ``BANK_CARD``, ``IBAN``, ``PHONE``
(Chinese mobiles with or without +86, international ``+`` numbers, North American numbers, and
other digit groups when a phone cue such as "call", "tel", "电话" precedes them), ``US_SSN``,
``IP`` (v4), ``URL_SECRET`` (URLs carrying tokens, keys, passwords or signatures), and by rules
``NAME`` (after a cue: "my name is", "Mr.", "我叫", "收货人"; lower-case after a naming cue,
"my name is zhang wei", or a first name and surname after "this is"; capitalised after "I'm"/"I am",
"I'm Zhang Wei") and ``ADDRESS`` (street addresses: "12 Baker Street", "Puruntie 82", "Apt. 5";
Chinese ones from city/district to the house number, "北京市朝阳区建国路88号"). Names and addresses
have no checksum, so the rules find them only in these shapes, and a common English word is never
taken for a name ("I'm Sorry", "this is Amazing"). A name or address said without a cue is found by
the learned tagger (:mod:`components.privacy.tagger`) when :func:`find_pii` is given one, as the
services' maskers are (``kefu.privacy.learned_recogniser``).

Text is recognised in its NFKC form (full-width ``１３８１２３４５６７８`` is a phone number), while
every span's offsets and value refer to the original text, so a span is masked in place.

:data:`TOKEN` is the shape of a masked value (``[TYPE_xxxxxxxx]``) and :data:`SENDER_TOKEN` that
of a masked sender id (``sender_`` and 16 hex digits); spans that are, contain or overlap a token
are never reported, which is what makes masking idempotent.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

TYPES = (
    "EMAIL",
    "CN_ID",
    "BANK_CARD",
    "IBAN",
    "PHONE",
    "US_SSN",
    "IP",
    "URL_SECRET",
    "NAME",
    "ADDRESS",
)
TOKEN = re.compile(r"\[(?:" + "|".join(TYPES) + r")_[0-9a-f]{8}\]")
#: A masked sender id (:meth:`components.privacy.pii.PIIMasker.sender_token`).
SENDER_TOKEN = re.compile(r"(?<![0-9A-Za-z])sender_[0-9a-f]{16}(?![0-9A-Za-z])")


@dataclass(frozen=True)
class PIISpan:
    """A detected value; offsets into the original text (``end`` exclusive)."""

    type: str
    start: int
    end: int
    value: str


def _cn_id_valid(value: str) -> bool:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(value[:17], weights, strict=True))
    if "10X98765432"[total % 11] != value[17].upper():
        return False
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return dt.date(1900, 1, 1) <= born <= dt.date.today()


def _luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _iban_valid(value: str) -> bool:
    compact = value.replace(" ", "").upper()
    if not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _ipv4_valid(value: str) -> bool:
    return all(
        0 <= int(part) <= 255 and (part == "0" or not part.startswith("0"))
        for part in value.split(".")
    )


_PHONE_CUE = re.compile(
    r"(?i)(?:phone|mobile|cell|tel|telephone|call|text|fax|whatsapp|number|contact|reach)"
    r"|电话|手机|联系|致电|号码|微信"
)
_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔"
    "向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌"
    "毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦"
    "麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩"
    "明佘池查麻苑迟邝"
)
_NAME_STOP = "的了吗呢啊是在要想就还也和与跟从给把被对到说"
_EN_NAME = re.compile(
    r"(?:\b(?P<cue>(?i:my name is|name is|name:|names are|this is|signed|regards,|sincerely,|dear))"
    r"|\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?)\s+"
    r"(?!(?:Mr|Mrs|Ms|Miss|Dr|Prof)\b)"
    r"(?P<v>[A-Z\u00c0-\u00de\u0100-\u024f][a-zA-Z\u00c0-\u024f'’-]+(?:\s+[A-Z]\.?(?=\s))?"
    r"(?:\s+[A-Z\u00c0-\u00de\u0100-\u024f][a-zA-Z\u00c0-\u024f'’-]+){0,2})"
)
_WORD = r"[A-Za-z\u00c0-\u024f][A-Za-z\u00c0-\u024f'’-]*"
# a cue that says a name follows, then the name in any case: "my name is zhang wei"
_EN_NAME_ANY_CASE = re.compile(
    r"\b(?i:my (?:full |first |last |real )?name is|my name['’]s|my surname is|i am called"
    r"|i['’]m called)\s+"
    rf"(?P<v>{_WORD}(?:\s+{_WORD}){{0,2}})"
)
# "this is john smith", "name: li ming": lower case after another cue only as a known first name
# (or a Chinese surname in pinyin) and one or two more words
_EN_NAME_WEAK_LOWER = re.compile(
    r"\b(?i:this is|name is|name:|names are|dear|signed|regards,|sincerely,)\s+"
    r"(?P<v>[a-z]+(?:\s+[a-z]+){1,2})"
)
# "I'm Zhang Wei" / "I am Zhang Wei": capitalised words only, none of them a common word
_UPPER_WORD = r"[A-Z\u00c0-\u00de\u0100-\u024f][a-z\u00c0-\u024f'’-]+"
_EN_NAME_I_AM = re.compile(
    rf"(?<![\w'’])[Ii](?:['’][mM]|\s+am)\s+(?P<v>{_UPPER_WORD}(?:\s+[A-Z]\.?(?=\s))?"
    rf"(?:\s+{_UPPER_WORD}){{0,2}})"
)
# common English words that follow a naming cue or "I'm" but are not names ("I'm Sorry",
# "this is Amazing", "my name is not on the order", "I am Chinese"); words that are also common
# first names (will, may, mark, grace, hope, rose, ...) are deliberately left out
_EN_STOP = frozenset(
    """
    a about above absolutely actually after again against ago ah all almost alone already
    alright also although always am amazed amazing an and angry annoyed another any anybody
    anyone anything anyway apparently are around as asking at available awake aware away awful
    back bad based basically be because been before being below best better between both bored
    bot but buying by called calling calm can cannot certain certainly checking chinese client
    close coming complaining completely concerned confused contact contacting correct could
    currently customer dear definitely delighted desperate did disappointed do does doing done
    down each early eating either else embarrassed employed english even ever every everyone
    exactly excited expecting extremely fairly feeling fed few fine finished first for free
    from frustrated full furious getting glad going gold gone good got grateful great guest
    had happy hard has have having he hello help her here hers herself hey hi him himself his
    home hoping how however human i if ill impressed in incorrect inside interested into is it
    its itself just kind kinda late leaving less like listed literally little living local
    locked logged looking lost lucky mad married me member messaging mine misspelled missing
    more most moving much my myself near nearly need needing nervous never new next nice no
    none nope nor not nothing now of off ok okay old on once one only or ordering other our
    ours ourselves out outside over overdue own paying pending perfectly person please pleased
    plus premium pretty probably quite rather ready real really regular registered reaching
    retired returning right sad same satisfied saying scared seeing sending serious seriously
    she shocked shopping should shown sick simply since sitting so some someone something
    sometimes sorry speaking spelled staying still stuck such super supposed sure surprised
    taking talking terrible than thank thankful thanks that the their theirs them themselves
    then there these they thinking this those though through tired to today tomorrow tonight
    too totally travelling traveling truly trying unable under unemployed unhappy unsure until
    up upset urgent us used user using usually very vip waiting wanting was we well were what
    when where which while who whom whose why with within without wondering working worried
    would writing wrong yes yesterday yet you your yours yourself
    account admin agent american asian australian british buyer canadian christian
    customers dutch european french german indian irish italian japanese korean mexican
    muslim order owner package parcel problem product refund russian seller service shop
    spanish staff student support swedish vegan vegetarian
    sir madam team friend friends everyone colleague colleagues partner valued shopper
    address phone mobile email tel date name number
    monday tuesday wednesday thursday friday saturday sunday
    """.split()
)
# first names and pinyin surnames that make "this is john smith" a name in lower case
_KNOWN_FIRST = frozenset(
    """
    james john robert michael william david richard joseph thomas charles christopher daniel
    matthew anthony mark donald steven paul andrew joshua kevin brian george edward ronald
    timothy jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott
    brandon benjamin samuel frank gregory raymond alexander patrick jack dennis peter tom
    mary patricia jennifer linda elizabeth barbara susan jessica sarah karen nancy lisa betty
    margaret sandra ashley kimberly emily donna michelle dorothy carol amanda melissa deborah
    stephanie rebecca sharon laura cynthia kathleen amy angela anna emma olivia sophia mia
    liam noah lucas ethan mateo sofia ava alice lucy chloe grace hannah
    zhang wang li liu chen yang huang zhao wu zhou xu sun zhu hu guo gao lin luo zheng liang
    xie tang han feng deng cao peng zeng xiao tian dong yuan pan cai jiang yu du ye cheng su
    wei lu ding ren shen yao cui zhong tan jin shi liao jia xia fu fang bai zou meng xiong qin
    qiu yin xue yan duan lei hou gu mao hao gong shao wan qian dai kong
    """.split()
)
# one or more pinyin syllables (loosely): "xiaoming" is a name, "calling" is not
_PINYIN_WORD = re.compile(
    r"(?:(?:zh|ch|sh|[bpmfdtnlgkhjqxzcsryw])?"
    r"(?:iang|iong|uang|iao|ian|uai|uan|ang|eng|ong|ing|ai|ei|ao|ou|an|en|er|ia|ie|iu|in|ua|uo"
    r"|ui|un|ue|a|o|e|i|u|v))+"
)
_WEAK_SUFFIXES = ("ed", "ly", "ous", "ful", "able", "ible", "ive", "ment", "ness", "tion", "sion")


# spaCy stop words that are also first names
_NAME_WORDS = frozenset({"will", "may"})


def common_english_word(word: str) -> bool:
    """Whether ``word`` is a common English word, never a name by itself ("Sorry", "Hello").

    The rules' stop list plus spaCy's English stop words; first names that are also words
    (Will, May, Grace) are in neither.
    """
    from components.text import en_stop_words

    lower = word.lower().strip("'’-.,!?;:")
    return lower in _EN_STOP or (lower in en_stop_words() and lower not in _NAME_WORDS)


def _not_a_name(word: str, strict: bool, weak: bool) -> bool:
    """Whether ``word`` is a common word rather than part of a name.

    ``strict`` also rejects long "-ing" words that are not pinyin ("Looking", not "Xiaoming");
    ``weak`` (lower case after a weak cue) also rejects adjective and adverb endings.
    """
    lower = word.lower().strip("'’-.")
    if not lower or lower in _EN_STOP:
        return True
    if strict and len(lower) >= 6 and lower.endswith("ing") and not _PINYIN_WORD.fullmatch(lower):
        return True
    return weak and len(lower) >= 5 and lower.endswith(_WEAK_SUFFIXES)


def _name_span(
    text: str, match: re.Match, *, strict: bool = False, weak: bool = False, need: int = 1
) -> PIISpan | None:
    """The name in ``match`` up to its first common word; None when fewer than ``need`` words.

    A capital letter after the first word is a middle initial ("Katie E Miles"); a possessive
    "'s" is not part of the name ("I'm Amanda's daughter").
    """
    start, end, kept = match.start("v"), None, 0
    for word in re.finditer(r"\S+", match.group("v")):
        initial = kept > 0 and re.fullmatch(r"[A-Z]\.?", word.group(0)) is not None
        if not initial and _not_a_name(word.group(0), strict, weak):
            break
        end, kept = start + word.end(), kept + 1
    if end is None or kept < need:
        return None
    if text.endswith(("'s", "’s"), start, end) and end - start > 2:
        end -= 2
    return PIISpan("NAME", start, end, text[start:end])


_ZH_NAME = re.compile(
    # "联系人工客服" is "contact human service": 人工, 人员, 人数 are words, not a cue and a name
    r"(?:我叫|我的名字是|我的名字叫|名字是|名字叫|姓名|我是"
    r"|(?:联系人|收货人|收件人|寄件人|持卡人|本人)(?![工员数们]))"
    r"[:：\s]*(?P<v>[\u4e00-\u9fff]{2,4})"
)
_STREET = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
    r"Terrace|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq|Trail|Crescent|Loop|Plaza|Alley|"
    r"Row|Close|Gardens|Park|Hill|Mews|Walk"
)
_UNIT = r"(?:Apt|Apartment|Suite|Ste|Unit|Flat|Room|Rm)\.?\s*#?\s*\d{1,5}[A-Za-z]?"
_EN_ADDRESS = re.compile(
    r"\b\d{1,6}[A-Za-z]?\s+(?:[A-Z][\w'’.-]*\s+){1,4}(?:" + _STREET + r")\b\.?"
    r"(?:,?\s+" + _UNIT + r")?"
    r"|\b(?:Rua|Rue|Via|Calle|Avenida|Ulica|Carrer|Strada)\s+(?:[\w'’.-]+\s+){0,4}\d{1,5}\b"
    r"|\b[A-Z][\w'’-]*(?:strasse|straße|gasse|weg|tie|katu|vej|gade|laan|straat|allee|platz|"
    r"väg|vägen|gatan|veien|utca|ulice)\s+\d{1,5}[a-z]?\b"
    r"|\b" + _UNIT + r"\b"
)
_PROVINCES = (
    "北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|"
    "广东|海南|四川|贵州|云南|陕西|甘肃|青海|台湾|内蒙古|广西|西藏|宁夏|新疆|香港|澳门"
)
_ZH_ADDRESS = re.compile(
    r"(?:(?:" + _PROVINCES + r")(?:省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区)?)?"
    r"(?:[\u4e00-\u9fff]{2,3}市)?"
    r"[\u4e00-\u9fff]{1,4}(?:区|县|市|旗)"
    r"[\u4e00-\u9fff\d]{1,12}?(?:路|街|大道|大街|巷|弄|胡同|道)"
    r"[\d一二三四五六七八九十百零〇-]+号"
    r"(?:[\u4e00-\u9fffA-Za-z]{0,8}?[\dA-Za-z一二三四五六七八九十-]+(?:号楼|栋|幢|单元|层|楼|室|号))*"
)
# words that lead into an address, stripped from a match's start (longest first)
_ADDRESS_LEADS = sorted(
    "我住在 住在 家住 收货地址 地址是 地址为 地址改成 地址 改成 改为 寄到 寄往 送到 送往 发到 "
    "是 在 到 于 ： :".split(),
    key=len,
    reverse=True,
)
_PROVINCE = re.compile(_PROVINCES)


def _trim_address(value: str) -> str:
    """Drop the words before an address: "地址改成北京市…" → "北京市…"."""
    stripped = True
    while stripped:
        stripped = False
        for lead in _ADDRESS_LEADS:
            if value.startswith(lead) and len(value) > len(lead):
                value, stripped = value[len(lead) :], True
                break
    province = _PROVINCE.search(value, 0, 6)
    return value[province.start() :] if province else value


def _phone_with_cue(text: str, start: int) -> bool:
    return bool(_PHONE_CUE.search(text, max(0, start - 40), start))


# (type, pattern, validator); earlier entries win overlaps of equal length. A validator gets
# the value (and, when it takes two arguments, the text and the match start for context).
_RECOGNISERS = [
    (
        "URL_SECRET",
        re.compile(
            r"https?://[^\s]+?[?&]"
            r"(?:token|access_token|key|api_key|apikey|password|pwd|secret|sig|signature|auth)"
            r"=[^\s&]+[^\s]*",
            re.IGNORECASE,
        ),
        None,
    ),
    (
        "EMAIL",
        re.compile(
            r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
        ),
        None,
    ),
    ("CN_ID", re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"), _cn_id_valid),
    (
        "IBAN",
        re.compile(
            r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,4})?"
            r"(?![A-Za-z0-9])"
        ),
        _iban_valid,
    ),
    (
        "BANK_CARD",
        re.compile(r"(?<![\dA-Za-z-])(?:\d[ -]?){12,18}\d(?![\dA-Za-z-])"),
        lambda v: _luhn_valid(re.sub(r"\D", "", v)),
    ),
    (
        "US_SSN",
        re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])"),
        None,
    ),
    (
        "PHONE",
        re.compile(r"(?<![\d+])(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)"),
        None,
    ),
    (
        "PHONE",
        re.compile(r"(?<![\w+])\+\d{1,3}(?:[ -]?\(?\d{1,4}\)?){2,5}(?!\d)"),
        lambda v: 8 <= len(re.sub(r"\D", "", v)) <= 15,
    ),
    (  # North American numbers: (541) 714-1388, 541-714-1388, 541.714.1388
        "PHONE",
        re.compile(
            r"(?<![\w.-])(?:1[ .-]?)?(?:\([2-9]\d{2}\)\s?|[2-9]\d{2}[.-])\d{3}[.-]\d{4}(?![\w-])"
        ),
        None,
    ),
    (  # any other grouping, only after a phone cue: "call me on 07700 063 966"
        "PHONE",
        re.compile(r"(?<![\w.+-])\(?\d{2,5}\)?(?:[ .-]\(?\d{2,4}\)?){1,4}(?![\w-])"),
        lambda v, text, start: (
            7 <= len(re.sub(r"\D", "", v)) <= 13 and _phone_with_cue(text, start)
        ),
    ),
    ("IP", re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"), _ipv4_valid),
    ("ADDRESS", _EN_ADDRESS, None),
    ("ADDRESS", _ZH_ADDRESS, None),
]


def _rule_spans(text: str) -> list[PIISpan]:
    """Names after a cue, and Chinese addresses without the words that lead into them."""
    spans = []
    for match in _EN_NAME.finditer(text):
        if match.group("cue") is None:  # after Mr./Dr.: whatever is capitalised
            spans.append(PIISpan("NAME", match.start("v"), match.end("v"), match.group("v")))
        elif span := _name_span(text, match):
            spans.append(span)
    for match in _EN_NAME_ANY_CASE.finditer(text):
        if span := _name_span(text, match, strict=True):
            spans.append(span)
    for match in _EN_NAME_WEAK_LOWER.finditer(text):
        if match.group("v").split()[0] in _KNOWN_FIRST:
            if span := _name_span(text, match, strict=True, weak=True, need=2):
                spans.append(span)
    for match in _EN_NAME_I_AM.finditer(text):
        if span := _name_span(text, match, strict=True):
            spans.append(span)
    for match in _ZH_NAME.finditer(text):
        raw = match.group("v")
        value = raw[:2] + re.split(f"[{_NAME_STOP}]", raw[2:])[0]  # "张三的朋友" → "张三"
        cue = match.group(0)[: match.start("v") - match.start()]
        if len(value) < 2 or (cue.startswith(("我是", "本人")) and value[0] not in _SURNAMES):
            continue
        start = match.start("v")
        spans.append(PIISpan("NAME", start, start + len(value), value))
    return spans


def _normalised(text: str) -> tuple[str, list[int] | None]:
    """``text`` in NFKC form, and where each of its characters starts in ``text``.

    The offsets are None when the form has the same length (full-width forms and the
    ideographic space map one to one, the common case); otherwise ``starts[i]`` is the index in
    ``text`` of the character that produced character ``i``, plus ``len(text)`` at the end.
    """
    if text.isascii():
        return text, None
    form = unicodedata.normalize("NFKC", text)
    if form == text:
        return text, None
    if len(form) == len(text) and all(
        a == b or unicodedata.normalize("NFKC", a) == b for a, b in zip(text, form, strict=True)
    ):
        return form, None
    parts: list[str] = []
    starts: list[int] = []
    for index, char in enumerate(text):
        normal = unicodedata.normalize("NFKC", char) if ord(char) > 127 else char
        parts.append(normal)
        starts.extend([index] * len(normal))
    starts.append(len(text))
    return "".join(parts), starts


def find_pii(text: str, tagger: SpanTagger | None = None) -> list[PIISpan]:
    """Every personal-data span in ``text``, non-overlapping, in order.

    Recognition runs on the NFKC form of ``text``; offsets and values refer to ``text`` itself.

    Args:
        text: The text.
        tagger: A learned recogniser of names and addresses
            (:class:`components.privacy.tagger.PIITagger`), run after the rules: its spans
            are kept where no rule found anything and no masked token is.
    """
    if not text:
        return []
    rules = _find_by_rules(text)
    if tagger is None:
        return rules
    learned = []
    tokens = [m.span() for m in TOKEN.finditer(text)] + [
        m.span() for m in SENDER_TOKEN.finditer(text)
    ]
    taken = [(s.start, s.end) for s in rules] + tokens
    for label, start, end, _ in tagger.find([text])[0]:
        if not any(start < e and b < end for b, e in taken):
            learned.append(PIISpan(label, start, end, text[start:end]))
    if not learned:
        return rules
    return sorted(rules + learned, key=lambda s: s.start)


class SpanTagger(Protocol):
    """What :func:`find_pii` needs of a learned recogniser."""

    def find(self, texts: Sequence[str]) -> list[list[tuple[str, int, int, float]]]:
        """``(type, start, end, confidence)`` spans per text."""


def _find_by_rules(text: str) -> list[PIISpan]:
    """:func:`find_pii` with the patterns and rules only."""
    norm, starts = _normalised(text)
    found: list[PIISpan] = _rule_spans(norm)
    for kind, pattern, valid in _RECOGNISERS:
        for match in pattern.finditer(norm):
            value, start = match.group(0), match.start()
            if kind == "ADDRESS":
                trimmed = _trim_address(value)
                start += len(value) - len(trimmed)
                value = trimmed
            if TOKEN.fullmatch(value) or TOKEN.search(value):
                continue
            if valid is not None:
                takes_context = valid.__code__.co_argcount == 3
                if not (valid(value, norm, start) if takes_context else valid(value)):
                    continue
            found.append(PIISpan(kind, start, start + len(value), value))
    if "sender_" in norm:  # a masked sender id's hex digits are no phone or card number
        senders = [m.span() for m in SENDER_TOKEN.finditer(norm)]
        found = [s for s in found if not any(s.start < e and b < s.end for b, e in senders)]
    found.sort(key=lambda s: (s.start, -(s.end - s.start)))
    kept: list[PIISpan] = []
    for span in found:
        if not kept or span.start >= kept[-1].end:
            kept.append(span)
    if norm is text:
        return kept
    if starts is None:
        return [PIISpan(s.type, s.start, s.end, text[s.start : s.end]) for s in kept]
    return [
        PIISpan(
            s.type,
            starts[s.start],
            starts[s.end - 1] + 1,
            text[starts[s.start] : starts[s.end - 1] + 1],
        )
        for s in kept
    ]
