"""The demo shop assistant's actions and business data (``make run ASSISTANT=shop``).

The action server loads this package (``rasa run actions --actions actions.shop``): the shop's
own actions (:mod:`actions.shop.actions`: the order-status form and lookup) and, through them,
the actions every assistant shares (:mod:`actions.actions`: language, knowledge answers,
handoff). Everything specific to the shop lives here; the actions ask :func:`shop` for the
order database and the failed-verification counts (built on first use, in ``KEFU_HOME``);
tests install their own with :func:`set_shop`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actions.process import PerProcess
from actions.shop.attempts import VerificationAttempts
from actions.shop.orders import OrderRepository


@dataclass
class Shop:
    """The demo shop's stores.

    Attributes:
        orders: The order database (seeded from ``data/orders.sql``).
        attempts: Failed order verifications per order and per sender, across conversations
            (the verification lock).
    """

    orders: OrderRepository = field(default_factory=OrderRepository)
    attempts: VerificationAttempts = field(default_factory=VerificationAttempts)


_SHOP: PerProcess[Shop] = PerProcess(Shop)


def shop() -> Shop:
    """The process's shop (created on first call)."""
    return _SHOP.get()


def set_shop(value: Shop | None) -> Shop | None:
    """Install ``value`` as the process's shop (None: a fresh one on next use).

    Returns:
        The shop it replaces.
    """
    return _SHOP.set(value)
