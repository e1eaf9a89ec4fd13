"""Generated personal data with valid check digits, for tests, the leak audit and benchmarks.

All values are synthetic: resident IDs with a valid ISO 7064 check character and birth date,
card numbers passing Luhn, IBANs passing mod 97, Chinese mobiles, names and addresses.
"""

from __future__ import annotations

import random

ZH_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
ZH_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
ZH_PLACES = [
    ("北京市", "朝阳区", "建国路"),
    ("上海市", "浦东新区", "世纪大道"),
    ("广东省深圳市", "南山区", "科技园路"),
    ("浙江省杭州市", "西湖区", "文三路"),
    ("四川省成都市", "武侯区", "人民南路"),
]
PINYIN_SURNAMES = ["Zhang", "Wang", "Li", "Liu", "Chen", "Yang", "Huang", "Zhao", "Zhou", "Xu"]
PINYIN_GIVEN = ["Wei", "Fang", "Na", "Min", "Jing", "Lei", "Jun", "Tao", "Xiaoming", "Lihua"]
EN_FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sofia", "Lucas", "Mia", "Ethan"]
EN_LAST = ["Hartley", "Okafor", "Lindqvist", "Moreau", "Castillo", "Brennan", "Novak", "Iyer"]


def cn_id(rng: random.Random) -> str:
    """A Chinese resident ID number with a valid birth date and check character."""
    area = rng.choice(["110105", "310104", "440305", "510107", "330106", "420111"])
    born = f"{rng.randint(1950, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = area + born + f"{rng.randint(0, 999):03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def luhn_card(prefix: str, length: int, rng: random.Random) -> str:
    """A card number of ``length`` digits starting with ``prefix`` that passes Luhn."""
    body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    total = sum(
        (n * 2 - 9 if n > 4 else n * 2) if i % 2 == 0 else n
        for i, n in enumerate(int(c) for c in reversed(body))
    )
    return body + str((10 - total % 10) % 10)


def not_luhn_card(rng: random.Random) -> str:
    """A 16-digit card-like number whose check digit is wrong (a typo, not a card)."""
    valid = luhn_card("6222", 16, rng)
    return valid[:-1] + str((int(valid[-1]) + rng.randint(1, 9)) % 10)


def cn_mobile(rng: random.Random) -> str:
    """A Chinese mobile number."""
    return (
        rng.choice(["138", "139", "150", "159", "186", "199"]) + f"{rng.randint(0, 10**8 - 1):08d}"
    )


def gb_iban(rng: random.Random) -> str:
    """A British IBAN that passes mod 97."""
    bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
    bban += "".join(str(rng.randint(0, 9)) for _ in range(14))
    number = int("".join(str(int(c, 36)) for c in bban + "GB00"))
    return f"GB{98 - number % 97:02d}{bban}"


def zh_name(rng: random.Random) -> str:
    """A two- or three-character Chinese name."""
    return rng.choice(ZH_SURNAMES) + "".join(rng.sample(ZH_GIVEN, rng.choice([1, 2])))


def en_name(rng: random.Random) -> str:
    """A first and last name."""
    return f"{rng.choice(EN_FIRST)} {rng.choice(EN_LAST)}"


def zh_address(rng: random.Random, with_unit: bool = False) -> str:
    """A Chinese street address down to the house number (and flat, with ``with_unit``)."""
    city, district, road = rng.choice(ZH_PLACES)
    address = f"{city}{district}{road}{rng.randint(1, 999)}号"
    if with_unit:
        address += f"{rng.randint(1, 30)}栋{rng.randint(101, 2505)}室"
    return address


def pinyin_name(rng: random.Random) -> str:
    """A Chinese name in pinyin, surname first ("Zhang Wei")."""
    return f"{rng.choice(PINYIN_SURNAMES)} {rng.choice(PINYIN_GIVEN)}"


def full_width(text: str) -> str:
    """``text`` with ASCII letters and digits in their full-width forms ("138" → "１３８")."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)
