import sqlite3

import pytest

from actions.shop.orders import OrderRepository, normalize_order_id
from components.errors import OrderStoreError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("KF100234", "KF100234"),
        ("kf100234", "KF100234"),
        ("my order is KF-100234 thanks", "KF100234"),
        ("#100234", "KF100234"),
        ("订单号是KF100234", "KF100234"),
        ("100234", "KF100234"),
        ("KF12345", None),
        ("1002345", None),
        ("hello", None),
        ("", None),
    ],
)
def test_normalize_order_id(text, expected):
    assert normalize_order_id(text) == expected


def test_database_is_created_from_the_seed(kefu_home):
    repo = OrderRepository()
    order = repo.get("KF100234")
    assert order.status == "shipped"
    assert order.carrier == "SF Express"
    assert "SF1402938475" in order.status_detail()
    assert repo.get("KF999999") is None
    assert (kefu_home / "orders.db").is_file()


def test_every_status_has_a_detail_sentence(kefu_home):
    repo = OrderRepository()
    conn = sqlite3.connect(repo.db_path)
    repo.get("KF100234")
    ids = [r[0] for r in sqlite3.connect(repo.db_path).execute("SELECT order_id FROM orders")]
    conn.close()
    assert len(ids) >= 8
    for order_id in ids:
        assert repo.get(order_id).status_detail().endswith(".")


def test_unusable_database_raises_a_catalogued_error(tmp_path):
    with pytest.raises(OrderStoreError) as info:
        OrderRepository(tmp_path / "missing-dir" / "orders.db").get("KF100234")
    assert info.value.code == "KEFU-ORDERS"


@pytest.mark.parametrize(
    ("answer", "verified"),
    [
        ("13800138000", True),
        ("my phone is 138 0013 8000", True),
        ("+86 138-0013-8000", True),
        ("００８６１３８００１３８０００", True),  # full-width
        ("WANG.FANG@example.com", True),
        ("it's wang.fang@example.com thanks", True),
        ("13800138001", False),
        ("38000", False),
        ("li.na@example.com", False),
        ("", False),
        ("I don't remember", False),
    ],
)
def test_only_the_orders_phone_or_email_verifies_it(kefu_home, answer, verified):
    order = OrderRepository().get("KF100234")
    assert order.verified_by(answer) is verified


def test_full_width_order_numbers_are_read():
    from actions.shop.orders import normalize_order_id

    assert normalize_order_id("订单ＫＦ１００２３４到哪了") == "KF100234"
    assert normalize_order_id("单号＃１００８７１") == "KF100871"


def test_every_order_reads_in_chinese(kefu_home):
    from actions.shop.orders import CARRIERS_ZH, OrderRepository
    from components.text import customer_language

    repo = OrderRepository()
    for order_id in ("KF100234", "KF100871", "KF104512", "KF100555", "KF100321", "KF109999"):
        order = repo.get(order_id)
        assert customer_language(order.items_in("zh")) == "zh"
        sentence = order.status_in("zh") + order.status_detail("zh")
        assert customer_language(sentence) == "zh", order_id
        assert not any(english in sentence for english in CARRIERS_ZH), order_id
    assert repo.get("KF100234").status_detail("en").startswith("Carrier: SF Express")
