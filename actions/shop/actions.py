"""The demo shop's own actions: the order-status form's validation and the order lookup.

The shared actions (language, knowledge answers, handoff) are imported so that
``rasa run actions --actions actions.shop`` registers them too.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import actions as shared  # noqa: F401  (registers the shared actions)
from actions.actions import customer_language
from actions.shop import shop
from actions.shop.orders import Order, normalize_order_id
from components.errors import KefuError

logger = logging.getLogger(__name__)


def _find_order(
    order_id: str | None, dispatcher: CollectingDispatcher, language: str = "en"
) -> tuple[bool, Order | None]:
    """Look an order up: ``(True, order or None)``.

    Returns ``(False, None)`` after telling the customer, when the order database is unavailable.
    """
    try:
        return True, shop().orders.get(order_id) if order_id else None
    except KefuError as exc:
        logger.error("orders.unavailable code=%s", exc.code)
        dispatcher.utter_message(text=exc.user_message_in(language))
        return False, None


#: The value of ``order_contact`` once the customer named the order's phone or e-mail.
VERIFIED = "verified"
#: Wrong phone numbers / e-mail addresses allowed per conversation (the limits per order and
#: per sender across conversations are in :mod:`actions.shop.attempts`).
MAX_CONTACT_ATTEMPTS = 3


class ValidateOrderStatusForm(FormValidationAction):
    """Checks the order number, then that the customer knows the order's phone or e-mail."""

    def name(self) -> str:
        """The form validation action's name in the domain."""
        return "validate_order_status_form"

    def validate_order_id(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """Normalise ``kf 100234`` / ``#100234`` to ``KF100234`` and look it up."""
        order_id = normalize_order_id(str(slot_value or ""))
        if order_id is None:
            dispatcher.utter_message(response="utter_invalid_order_id")
            return {"order_id": None}
        available, order = _find_order(order_id, dispatcher, customer_language(tracker))
        if not available:
            return {"order_id": None}
        if order is None:
            dispatcher.utter_message(response="utter_order_not_found", order_id=order_id)
            return {"order_id": None}
        return {"order_id": order_id}

    def validate_order_contact(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """Accept the contact only if it is the phone number or e-mail on the order.

        Nothing about an order is said before this. Wrong answers are counted per conversation
        (``contact_attempts``, reset only by a success): after three, no order is verified in
        this conversation any more and the customer is told a human can help. They are also
        counted per order and per sender across conversations
        (:class:`~actions.shop.attempts.VerificationAttempts`), so a new sender id does not
        lift the lock: while the order or the sender is locked, even the right answer is
        refused. When that store is unavailable, nothing is verified (fail closed).
        """
        order_id = tracker.get_slot("order_id")
        language = customer_language(tracker)
        attempts = int(tracker.get_slot("contact_attempts") or 0)
        if attempts >= MAX_CONTACT_ATTEMPTS:
            logger.info("orders.verified result=locked scope=conversation")
            dispatcher.utter_message(response="utter_contact_locked", order_id=order_id or "")
            return {"order_contact": None, "order_id": None}
        store = shop().attempts
        key = str(order_id or "")
        try:
            lock = store.locked(key, tracker.sender_id)
        except KefuError as exc:
            logger.error("orders.unavailable code=%s", exc.code)
            dispatcher.utter_message(text=exc.user_message_in(language))
            return {"order_contact": None}
        if lock is not None:
            logger.info("orders.verified result=locked scope=%s", lock.scope)
            dispatcher.utter_message(response="utter_contact_locked", order_id=order_id or "")
            return {"order_contact": None, "order_id": None}
        available, order = _find_order(order_id, dispatcher, language)
        if not available:
            return {"order_contact": None}
        try:
            if order is not None and order.verified_by(str(slot_value or "")):
                store.record_success(key, tracker.sender_id)
                logger.info("orders.verified result=ok")
                return {"order_contact": VERIFIED, "contact_attempts": 0.0}
            lock = store.record_failure(key, tracker.sender_id)
        except KefuError as exc:
            logger.error("orders.unavailable code=%s", exc.code)
            dispatcher.utter_message(text=exc.user_message_in(language))
            return {"order_contact": None}
        attempts += 1
        logger.info("orders.verified result=mismatch attempts=%d", attempts)
        if attempts >= MAX_CONTACT_ATTEMPTS or lock is not None:
            dispatcher.utter_message(response="utter_contact_locked", order_id=order_id or "")
            return {"order_contact": None, "order_id": None, "contact_attempts": float(attempts)}
        dispatcher.utter_message(response="utter_contact_mismatch", order_id=order_id or "")
        return {"order_contact": None, "contact_attempts": float(attempts)}


class ActionLookupOrder(Action):
    """Tells the customer where their order is."""

    def name(self) -> str:
        """The action's name in the domain."""
        return "action_lookup_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        """Read the order named by the ``order_id`` slot and say where it is."""
        order_id = tracker.get_slot("order_id")
        cleared = [SlotSet("order_id", None), SlotSet("order_contact", None)]
        if tracker.get_slot("order_contact") != VERIFIED:
            # never reveal an order the customer has not verified (the form does that first)
            logger.warning("orders.lookup_refused reason=unverified")
            dispatcher.utter_message(response="utter_contact_locked", order_id=order_id or "")
            return cleared
        language = customer_language(tracker)
        available, order = _find_order(order_id, dispatcher, language)
        if not available:
            return cleared
        if order is None:
            dispatcher.utter_message(response="utter_order_not_found", order_id=order_id or "")
            return cleared
        dispatcher.utter_message(
            response="utter_order_status",
            order_id=order.order_id,
            items=order.items_in(language),
            status=order.status_in(language),
            detail=order.status_detail(language),
        )
        logger.info("orders.lookup status=%s", order.status)
        # cleared so the next "where is my order?" asks (and verifies) again
        return cleared
