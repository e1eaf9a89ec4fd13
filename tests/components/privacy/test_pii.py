import pytest

from components.errors import ConfigError
from components.privacy.pii import PIIMasker
from components.privacy.recognisers import TOKEN, find_pii
from components.privacy.vault import Vault


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("write to john.doe+shop@example.co.uk please", "EMAIL", "john.doe+shop@example.co.uk"),
        ("我的手机是13812345678", "PHONE", "13812345678"),
        ("call +86 138-1234-5678 now", "PHONE", "+86 138-1234-5678"),
        ("office +44 20 7946 0958", "PHONE", "+44 20 7946 0958"),
        ("身份证11010519491231002X", "CN_ID", "11010519491231002X"),
        ("card 4111 1111 1111 1111 exp 12/29", "BANK_CARD", "4111 1111 1111 1111"),
        ("银行卡 6222021234567890128", "BANK_CARD", "6222021234567890128"),
        ("IBAN DE89 3704 0044 0532 0130 00.", "IBAN", "DE89 3704 0044 0532 0130 00"),
        ("from 10.0.12.7 today", "IP", "10.0.12.7"),
        (
            "reset: https://shop.example/r?user=1&token=ab12cd",
            "URL_SECRET",
            "https://shop.example/r?user=1&token=ab12cd",
        ),
        ("my SSN is 460-89-9847", "US_SSN", "460-89-9847"),
        ("call 541-714-1388 after 5", "PHONE", "541-714-1388"),
        ("please call me on 07700 063 966", "PHONE", "07700 063 966"),
        ("iban gb42nawi04454264788619", "IBAN", "gb42nawi04454264788619"),
        ("My name is Šárka Ottová.", "NAME", "Šárka Ottová"),
        ("Dear Mr. Brown,", "NAME", "Brown"),
        ("我叫张三，订单有问题", "NAME", "张三"),
        ("我是李娜的朋友", "NAME", "李娜"),
        ("ship it to 221B Baker Street, Apt 4 please", "ADDRESS", "221B Baker Street, Apt 4"),
        ("she lives at Puruntie 82", "ADDRESS", "Puruntie 82"),
        (
            "寄到上海市浦东新区世纪大道100号3栋1201室，谢谢",
            "ADDRESS",
            "上海市浦东新区世纪大道100号3栋1201室",
        ),
    ],
)
def test_recognisers(text, kind, value):
    spans = find_pii(text)
    assert [(s.type, s.value) for s in spans] == [(kind, value)]
    assert text[spans[0].start : spans[0].end] == value


@pytest.mark.parametrize(
    "text",
    [
        "order KF100234 costs 1,299 CNY, arriving 2026-11-30",
        "11010519491231002Y",  # wrong check digit
        "110105194913310028",  # impossible date
        "4111 1111 1111 1112",  # fails Luhn
        "version 1.2.3.4000 and 300.1.1.1",
        "我是想问一下退货",  # 我是 + no surname: not a name
        "请联系人工客服申请保修",  # 联系人工客服: contact human service, no 联系人 cue
        "the total is 07700 063 966 points",  # digit groups without a phone cue
        "This is great, I am happy",
        "SSN 000-12-3456",  # never issued
        "tracking number SF1402938475",
        "https://shop.example/help?page=2",
    ],
)
def test_look_alikes_are_not_personal_data(text):
    assert find_pii(text) == []


def test_masking_is_stable_idempotent_and_keyed():
    masker = PIIMasker("k" * 16)
    text = "mail a@b.com or 13812345678, again a@b.com"
    masked = masker.mask(text)
    assert "a@b.com" not in masked and "13812345678" not in masked
    tokens = TOKEN.findall(masked)
    assert len(tokens) == 3 and tokens[0] == tokens[2]
    assert masker.mask(masked) == masked
    assert PIIMasker("x" * 16).mask(text) != masked  # another key, other tokens


def test_vault_round_trip(tmp_path):
    vault = Vault("v" * 32, tmp_path / "vault.db")
    masker = PIIMasker(vault=vault)
    original = "call me on 13812345678 or mail li.lei@example.cn"
    masked = masker.mask(original)
    assert vault.reveal_all(masked) == original
    assert b"13812345678" not in (tmp_path / "vault.db").read_bytes()  # encrypted at rest
    again = Vault("v" * 32, tmp_path / "vault.db")
    assert again.reveal_all(masked) == original
    assert Vault("w" * 32, tmp_path / "other.db").reveal_all(masked) == masked


def test_short_vault_key_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="KEFU_VAULT_KEY"):
        Vault("short", tmp_path / "v.db")


def test_an_iban_failing_mod_97_is_not_an_iban():
    spans = find_pii("IBAN DE89 3704 0044 0532 0130 01")
    # its digits happen to pass Luhn, so they are still masked as a card number: when in doubt,
    # masking errs on the side of privacy
    assert [s.type for s in spans] == ["BANK_CARD"]


# --- lower-case names after a cue, "I'm Zhang Wei", full-width digits ---------------------------


@pytest.mark.parametrize(
    ("text", "value", "start"),
    [
        ("my name is zhang wei", "zhang wei", 11),
        ("hi, my name is lena andersson.", "lena andersson", 15),
        ("my name is zhang wei and my order is late", "zhang wei", 11),
        ("my name is xiaoming", "xiaoming", 11),
        ("My name's li na, thanks", "li na", 10),
        ("this is john smith from accounts", "john smith", 8),
        ("name: li ming", "li ming", 6),
        ("I'm Zhang Wei", "Zhang Wei", 4),
        ("I am Zhang Wei, order KF100234 is late", "Zhang Wei", 5),
        ("Hi, I’m Emily Chen from Shanghai", "Emily Chen", 8),
        ("I'm Katie E Miles, originally from Leeds", "Katie E Miles", 4),
        ("I'm Alex", "Alex", 4),
        ("\"I'm Amanda's daughter\"", "Amanda", 5),
    ],
)
def test_names_in_lower_case_and_after_i_am(text, value, start):
    spans = find_pii(text)
    assert [(s.type, s.value, s.start, s.end) for s in spans] == [
        ("NAME", value, start, start + len(value))
    ]
    assert text[spans[0].start : spans[0].end] == value


I_AM_SENTENCES = [
    "I'm Happy with the service",
    "I'm Sorry, I meant order KF100234",
    "I'm Looking for my parcel",
    "I'm Writing To Complain About My Order",
    "I'm Not Sure which size to pick",
    "I'm Chinese and live in Shanghai",
    "I am Interested in the blue one",
    "I'm Waiting For A Refund",
    "I'm Still Waiting",
    "I'm Really Disappointed",
    "I'm Calling About My Order",
    "I'm Trying To Pay",
    "I'm Fine, thanks",
    "I'm Back again",
    "I'm A Customer",
    "I'm Confused",
    "I'm Going Home",
    "I am Happy",
    "i'm happy with it",
]
OTHER_ORDINARY = [
    "this is taking forever",
    "this is really bad",
    "this is long overdue",
    "this is customer service",
    "my name is not on the order",
    "my name is spelled wrong",
    "product name: wireless mouse",
    "Dear Customer, your parcel is on its way",
    "Dear Sir,",
    "This is Amazing work",
    "names are hard to remember",
    "my name is in the system already",
]


@pytest.mark.parametrize("text", I_AM_SENTENCES + OTHER_ORDINARY)
def test_ordinary_sentences_have_no_name(text):
    assert find_pii(text) == []


@pytest.mark.parametrize(
    ("text", "kind", "value", "start"),
    [
        ("手机１３８１２３４５６７８，谢谢", "PHONE", "１３８１２３４５６７８", 2),
        ("my phone is １３８ １２３４ ５６７８ ok", "PHONE", "１３８ １２３４ ５６７８", 12),
        (
            "身份证１１０１０５１９４９１２３１００２Ｘ",
            "CN_ID",
            "１１０１０５１９４９１２３１００２Ｘ",
            3,
        ),
        (
            "卡号６２２２０２１２３４５６７８９０１２８",
            "BANK_CARD",
            "６２２２０２１２３４５６７８９０１２８",
            2,
        ),
        (
            "mail ｌｉ．ｌｅｉ＠ｅｘａｍｐｌｅ．ｃｎ",
            "EMAIL",
            "ｌｉ．ｌｅｉ＠ｅｘａｍｐｌｅ．ｃｎ",
            5,
        ),
        # NFKC changes the length before the number ("ﬁ" → "fi"): offsets still exact
        ("ﬁle ① call 1３８1２３４５６７８ now", "PHONE", "1３８1２３４５６７８", 11),
    ],
)
def test_full_width_digits_are_recognised_at_their_original_offsets(text, kind, value, start):
    spans = find_pii(text)
    assert [(s.type, s.value, s.start, s.end) for s in spans] == [
        (kind, value, start, start + len(value))
    ]


def test_a_full_width_phone_is_masked_in_place_with_the_ascii_token():
    masker = PIIMasker("k" * 16)
    masked = masker.mask("手机１３８１２３４５６７８，谢谢")
    ascii_token = masker.mask("13812345678")
    assert masked == f"手机{ascii_token}，谢谢"
    assert not any(c in masked for c in "１３８")


def test_full_width_look_alikes_are_not_personal_data():
    for text in [
        "订单ＫＦ１００２３４已发货",
        "数量：１２，总价：２９９元",
        "１１０１０５１９４９１２３１００２Ｙ",
    ]:
        assert find_pii(text) == []


def test_vault_keeps_what_was_typed(tmp_path):
    vault = Vault("v" * 32, tmp_path / "vault.db")
    masked = PIIMasker(vault=vault).mask("手机１３８１２３４５６７８")
    assert vault.reveal_all(masked) == "手机１３８１２３４５６７８"
