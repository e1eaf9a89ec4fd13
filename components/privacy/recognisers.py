"""Personal-data recognisers (zh + en): patterns plus validators, and :func:`find_pii`.

Recognisers are patterns plus validators, so a random 18-digit number is not a Chinese resident
ID unless its ISO 7064 MOD 11-2 check digit and birth date are valid, and a digit run is not a
bank card unless it passes Luhn. Types: ``EMAIL``, ``CN_ID``, ``BANK_CARD``, ``IBAN``, ``PHONE``
(Chinese mobiles with or without +86, international ``+`` numbers, North American numbers, and
other digit groups when a phone cue such as "call", "tel", "电话" precedes them), ``US_SSN``,
``IP`` (v4), ``URL_SECRET`` (URLs carrying tokens, keys, passwords or signatures), and by rules
``NAME`` (after a cue: "my name is", "Mr.", "我叫", "收货人") and ``ADDRESS`` (street addresses:
"12 Baker Street", "Puruntie 82", "Apt. 5"; Chinese ones from city/district to the house
number, "北京市朝阳区建国路88号"). Names and addresses have no checksum, so they are found only
in these shapes; a name said without a cue is not found.

:data:`TOKEN` is the shape of a masked value (``[TYPE_xxxxxxxx]``); spans that are or contain a
token are never reported, which is what makes masking idempotent.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

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
    r"(?:\b(?i:my name is|name is|name:|names are|this is|signed|regards,|sincerely,|dear)"
    r"|\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?)\s+"
    r"(?!(?:Mr|Mrs|Ms|Miss|Dr|Prof)\b)"
    r"(?P<v>[A-Z\u00c0-\u00de\u0100-\u024f][a-zA-Z\u00c0-\u024f'’-]+(?:\s+[A-Z]\.?(?=\s))?"
    r"(?:\s+[A-Z\u00c0-\u00de\u0100-\u024f][a-zA-Z\u00c0-\u024f'’-]+){0,2})"
)
_ZH_NAME = re.compile(
    r"(?:我叫|我的名字是|我的名字叫|名字是|名字叫|姓名|联系人|收货人|收件人|寄件人|持卡人|本人|我是)"
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
        spans.append(PIISpan("NAME", match.start("v"), match.end("v"), match.group("v")))
    for match in _ZH_NAME.finditer(text):
        raw = match.group("v")
        value = raw[:2] + re.split(f"[{_NAME_STOP}]", raw[2:])[0]  # "张三的朋友" → "张三"
        cue = match.group(0)[: match.start("v") - match.start()]
        if len(value) < 2 or (cue.startswith(("我是", "本人")) and value[0] not in _SURNAMES):
            continue
        start = match.start("v")
        spans.append(PIISpan("NAME", start, start + len(value), value))
    return spans


def find_pii(text: str) -> list[PIISpan]:
    """Every personal-data span in ``text``, non-overlapping, in order."""
    if not text:
        return []
    found: list[PIISpan] = _rule_spans(text)
    for kind, pattern, valid in _RECOGNISERS:
        for match in pattern.finditer(text):
            value, start = match.group(0), match.start()
            if kind == "ADDRESS":
                trimmed = _trim_address(value)
                start += len(value) - len(trimmed)
                value = trimmed
            if TOKEN.fullmatch(value) or TOKEN.search(value):
                continue
            if valid is not None:
                takes_context = valid.__code__.co_argcount == 3
                if not (valid(value, text, start) if takes_context else valid(value)):
                    continue
            found.append(PIISpan(kind, start, start + len(value), value))
    found.sort(key=lambda s: (s.start, -(s.end - s.start)))
    kept: list[PIISpan] = []
    for span in found:
        if not kept or span.start >= kept[-1].end:
            kept.append(span)
    return kept
