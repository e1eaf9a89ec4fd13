"""The sample order database (SQLite), materialised from ``actions/shop/data/orders.sql``."""

from __future__ import annotations

import hmac
import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from actions.sqlite import open_db
from components.errors import OrderStoreError
from components.paths import kefu_home

SEED_SQL = Path(__file__).resolve().parent / "data" / "orders.sql"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
ORDER_ID = re.compile(r"(?<![A-Za-z0-9])(?:#\s*)?(?:kf[\s-]?)?(\d{6})(?!\d)", re.IGNORECASE)

#: How each status reads in a reply, per language (``Order {id} ({items}) is {status}.``).
STATUS_TEXT = {
    "en": {
        "processing": "being prepared in our warehouse",
        "shipped": "on its way",
        "out_for_delivery": "out for delivery today",
        "delivered": "delivered",
        "cancelled": "cancelled",
        "returned": "returned to us",
    },
    "zh": {
        "processing": "正在仓库备货中",
        "shipped": "已发货，正在运输途中",
        "out_for_delivery": "今天正在派送",
        "delivered": "已签收",
        "cancelled": "已取消",
        "returned": "已退回",
    },
}
#: Carriers' Chinese names (the English ones are stored).
CARRIERS_ZH = {
    "SF Express": "顺丰速运",
    "ZTO Express": "中通快递",
    "JD Logistics": "京东物流",
    "YTO Express": "圆通速递",
}


def _zh_date(iso: str | None) -> str:
    """``2026-11-30`` -> ``11月30日`` (the year is the current one in a shop's replies)."""
    try:
        _, month, day = (iso or "").split("-")
        return f"{int(month)}月{int(day)}日"
    except ValueError:
        return iso or ""


@dataclass(frozen=True)
class Order:
    """One order row."""

    order_id: str
    items: str
    items_zh: str
    total_cny: float
    status: str
    carrier: str | None
    tracking_no: str | None
    placed_on: str
    eta: str | None
    contact_phone: str
    contact_email: str

    def verified_by(self, answer: str) -> bool:
        """Whether ``answer`` names this order's phone number or e-mail address.

        Full-width characters, spaces, dashes and a +86 / 0086 prefix are ignored; e-mail
        addresses compare without regard to case. Compared in constant time.
        """
        text = unicodedata.normalize("NFKC", answer or "")
        email = EMAIL.search(text)
        if email:
            given, expected = email.group(0).lower(), self.contact_email.lower()
        else:
            given = re.sub(r"\D", "", text)
            for prefix in ("0086", "86"):
                if len(given) > 11 and given.startswith(prefix):
                    given = given[len(prefix) :]
            expected = re.sub(r"\D", "", self.contact_phone)
        return bool(given) and hmac.compare_digest(given.encode(), expected.encode())

    def items_in(self, language: str) -> str:
        """The items' names in ``language`` (``zh`` or English)."""
        return self.items_zh if language == "zh" else self.items

    def status_in(self, language: str) -> str:
        """The status as a reply says it, in ``language`` (``zh`` or English)."""
        texts = STATUS_TEXT["zh" if language == "zh" else "en"]
        return texts.get(self.status, self.status)

    def status_detail(self, language: str = "en") -> str:
        """One sentence with the carrier, tracking number and dates that fit the status."""
        if language == "zh":
            return self._status_detail_zh()
        if self.status in ("shipped", "out_for_delivery") and self.carrier:
            return (
                f"Carrier: {self.carrier}, tracking number {self.tracking_no}, "
                f"expected by {self.eta}."
            )
        if self.status == "processing":
            return f"It should leave the warehouse soon and arrive by {self.eta}."
        if self.status == "delivered":
            return f"It was delivered by {self.carrier} on {self.eta}."
        if self.status == "cancelled":
            return "The payment has been refunded to the original payment method."
        return "The refund is handled as described in our refunds policy."

    def _status_detail_zh(self) -> str:
        carrier = CARRIERS_ZH.get(self.carrier or "", self.carrier or "")
        if self.status in ("shipped", "out_for_delivery") and self.carrier:
            return (
                f"承运快递：{carrier}，运单号 {self.tracking_no}，预计 {_zh_date(self.eta)}前送达。"
            )
        if self.status == "processing":
            return f"很快就会出库，预计 {_zh_date(self.eta)}前送达。"
        if self.status == "delivered":
            return f"已由{carrier}于 {_zh_date(self.eta)}送达。"
        if self.status == "cancelled":
            return "货款已原路退回到您的支付账户。"
        return "退款将按照我们的退款政策处理。"


def normalize_order_id(text: str) -> str | None:
    """Extract an order number (``KF`` + 6 digits, prefix optional) from free text.

    Full-width characters (``ＫＦ１００２３４``, typed with a Chinese input method) count as
    their ASCII forms.
    """
    match = ORDER_ID.search(unicodedata.normalize("NFKC", text or ""))
    return f"KF{match.group(1)}" if match else None


class OrderRepository:
    """Read access to the orders table.

    Args:
        db_path: SQLite file; (re)built from the seed SQL once per process.
    """

    def __init__(self, db_path: str | Path | None = None) -> None:
        self.db_path = Path(db_path or kefu_home() / "orders.db")
        self._seeded = False

    def get(self, order_id: str) -> Order | None:
        """The order with this id, or None.

        Raises:
            OrderStoreError: when the database cannot be opened or queried.
        """
        # rebuilt from the seed once per process, in one transaction (see data/orders.sql)
        conn = open_db(self.db_path, "" if self._seeded else SEED_SQL.read_text(), OrderStoreError)
        self._seeded = True
        try:
            row = conn.execute(
                "SELECT order_id, items, items_zh, total_cny, status, carrier, tracking_no, "
                "placed_on, eta, contact_phone, contact_email FROM orders WHERE order_id = ?",
                (order_id,),
            ).fetchone()
        except sqlite3.Error as exc:
            raise OrderStoreError(f"order query failed: {type(exc).__name__}") from exc
        finally:
            conn.close()
        return Order(*row) if row else None
