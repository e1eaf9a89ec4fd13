"""The demo shop's business data: orders, tickets and the intent names its flows use.

Everything specific to the demo assistant lives here; a project of your own replaces it. The
actions ask :func:`shop` for the order and ticket stores (built on first use, in ``KEFU_HOME``);
tests install their own with :func:`set_shop`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from actions.demo_shop.orders import OrderRepository
from actions.demo_shop.tickets import TicketStore


@dataclass
class Shop:
    """The demo shop's stores.

    Attributes:
        orders: The order database (seeded from ``data/orders.sql``).
        tickets: The handoff tickets.
    """

    orders: OrderRepository = field(default_factory=OrderRepository)
    tickets: TicketStore = field(default_factory=TicketStore)


_SHOP: Shop | None = None
_LOCK = threading.Lock()


def shop() -> Shop:
    """The process's shop (created on first call)."""
    global _SHOP
    with _LOCK:
        if _SHOP is None:
            _SHOP = Shop()
        return _SHOP


def set_shop(value: Shop | None) -> Shop | None:
    """Install ``value`` as the process's shop (None: a fresh one on next use).

    Returns:
        The shop it replaces.
    """
    global _SHOP
    with _LOCK:
        previous, _SHOP = _SHOP, value
    return previous


def import_queued_handoffs() -> int:
    """Turn handoffs the Rasa server queued while actions failed into tickets.

    The hardened REST channel (:mod:`components.channels.rest`) queues a handoff when a turn ended
    in a failed custom action (e.g. this server was down); the action server calls this when it
    starts. A record whose ticket cannot be written goes back to the queue.

    Returns:
        The number of tickets created.
    """
    from components.channels import handoff_queue

    records = handoff_queue.drain()
    created = 0
    for position, record in enumerate(records):
        try:
            shop().tickets.create(
                sender_id=record.sender, reason=record.reason, last_intent=None, order_id=None
            )
        except Exception:
            for unsaved in records[position:]:
                handoff_queue.enqueue(unsaved)
            raise
        created += 1
    return created
