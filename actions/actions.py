"""rasa-sdk actions every assistant shares: language, knowledge answers and human handoff.

An assistant's own actions live in ``actions/<name>/`` (the shop's: :mod:`actions.shop.actions`) and
import these, so the action server loads both with ``--actions actions.<name>``. The work is done by
engines the process's services object holds (:mod:`components.services`: the knowledge base, the
answer composer, the guard) and by the ticket store (:mod:`actions.tickets`). Nothing is built at
import: the action server warms the services up when it starts (``rasa_sdk_plugins``), and the first
request builds whatever is still missing. Every free-text reply goes through the configured guard
before it leaves the action server (``dispatcher.utter_message(text=...)`` bypasses Rasa's NLG, so
the NLG cannot guard it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.intents import FALLBACK_INTENTS, POLICY_INTENT, UNHANDLED_INTENTS
from actions.tickets import tickets
from components.errors import KefuError, KnowledgeBaseError
from components.services import get_services
from components.text import LANGUAGE_KEY
from knowledge.answering import is_follow_up, rewrite_follow_up

logger = logging.getLogger(__name__)


#: "Source"/"Sources" before a knowledge answer's citations, per language.
SOURCE_LABELS = {"en": ("Source", "Sources"), "zh": ("来源", "来源")}


def customer_language(tracker: Tracker) -> str:
    """The language to answer in: the latest message's, else the slot's, else English."""
    language = tracker.latest_message.get(LANGUAGE_KEY) or tracker.get_slot(LANGUAGE_KEY)
    return "zh" if language == "zh" else "en"


def guarded(text: str) -> str:
    """Mask sensitive words in text produced by an action (the configured guard)."""
    return get_services().guard.mask(text)


class ActionSetLanguage(Action):
    """Keeps the ``language`` slot on the customer's language (the slot's custom mapping).

    Rasa runs it after every user message (``action_extract_slots``); it sets the slot only
    when the message's language is known and differs, so a message without words (an order
    number, a button) keeps the conversation's language.
    """

    def name(self) -> str:
        """The action's name in the domain (the slot mapping names it)."""
        return "action_set_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        """``SlotSet("language", ...)`` when the latest message changes it."""
        language = tracker.latest_message.get(LANGUAGE_KEY)
        if language in ("zh", "en") and language != tracker.get_slot(LANGUAGE_KEY):
            logger.info("language.switch to=%s", language)
            return [SlotSet(LANGUAGE_KEY, language)]
        return []


class ActionAnswerKnowledge(Action):
    """Answers a question from the knowledge base and names the documents it used.

    Rules run it for the policy intent, for retrieval intents (``intent: faq`` → this action;
    it reads the message, not the intent) and as the fallback for low NLU confidence. A
    follow-up ("and for watches?") is retrieved together with the previous question it
    answered; the reply is a checked, grounded LLM answer or the best extractive sentences.
    When nothing relevant is found it says so (as the fallback: ``utter_default``) and offers a
    human.
    """

    def name(self) -> str:
        """The action's name in the domain."""
        return "action_answer_knowledge"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        """Answer the latest message from the knowledge base, or refuse and offer a human."""
        text = tracker.latest_message.get("text") or ""
        language = customer_language(tracker)
        as_fallback = (tracker.latest_message.get("intent") or {}).get("name") in FALLBACK_INTENTS
        # a message the NLU is unsure of is not joined to the previous question: "but I don't
        # understand" must not repeat the last answer
        previous = None if as_fallback else _previous_policy_question(tracker)
        context = previous if previous and is_follow_up(text) else None
        question = rewrite_follow_up(text, previous)  # what the answer is composed for
        not_found = [SlotSet("kb_found", False), SlotSet("kb_sources", [])]
        try:
            services = get_services()
            # retrieval and generation are blocking (torch): keep the event loop free
            answer = await asyncio.to_thread(services.knowledge.answer, text, language, context)
            composed = await asyncio.to_thread(
                services.composer.compose, question, [p["text"] for p in answer.passages]
            )
        except Exception as exc:
            error = exc if isinstance(exc, KefuError) else KnowledgeBaseError("retrieval failed")
            logger.error("knowledge.unavailable code=%s error=%s", error.code, type(exc).__name__)
            if as_fallback:  # the customer did not ask about policies: the usual apology
                return _say_and_offer_a_human(dispatcher, not_found, response="utter_default")
            dispatcher.utter_message(text=error.user_message_in(language))
            return not_found
        if not answer.found or composed.mode == "declined":
            # declined: the passages looked relevant, but the grounded LLM read them and says
            # they do not answer the question
            if as_fallback:
                return _say_and_offer_a_human(dispatcher, not_found, response="utter_default")
            return _say_and_offer_a_human(dispatcher, not_found, response="utter_kb_not_found")
        cited = [answer.passages[n - 1] for n in composed.citations]
        lines = [
            f"{p['title']} — {p['section']} ({p['source']})"
            if p["section"] != p["title"]
            else f"{p['title']} ({p['source']})"
            for p in cited
        ]
        one, many = SOURCE_LABELS[language]
        label = one if len(lines) == 1 else many
        colon, separator = ("：", "；") if language == "zh" else (": ", "; ")
        dispatcher.utter_message(
            text=guarded(f"{composed.text}\n\n{label}{colon}" + separator.join(lines))
        )
        logger.info(
            "knowledge.answer source=%s score=%.3f mode=%s fallback_reason=%s",
            answer.source,
            answer.score,
            composed.mode,
            composed.reason or "-",
        )
        return [
            SlotSet("kb_found", True),
            SlotSet("kb_sources", list(dict.fromkeys(p["source"] for p in cited))),
        ]


def _say_and_offer_a_human(
    dispatcher: CollectingDispatcher, events: list[dict[str, Any]], **message: str
) -> list[dict[str, Any]]:
    """Send ``message`` (``text=`` or ``response=``), then offer a human.

    The offer is a follow-up action (not a dispatcher message) so rules can react to the yes/no
    after it.
    """
    dispatcher.utter_message(**message)
    return [*events, FollowupAction("utter_offer_human")]


def _previous_policy_question(tracker: Tracker) -> str | None:
    """The customer's previous knowledge question, for follow-ups like 'and for watches?'.

    That is the last earlier message that was classified ``ask_policy`` or that this action
    answered (``kb_found`` set true after it: retrieval intents and the fallback); an unanswered
    low-confidence message is not one.
    """
    events = tracker.events
    users = [i for i, e in enumerate(events) if e.get("event") == "user"]
    for position, index in reversed(list(enumerate(users[:-1]))):
        event = events[index]
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        following = events[index + 1 : users[position + 1]]
        if intent == POLICY_INTENT or any(
            e.get("event") == "slot" and e.get("name") == "kb_found" and e.get("value") is True
            for e in following
        ):
            return event.get("text")
    return None


class ActionHandoff(Action):
    """Creates a ticket for a human agent (metadata only, no raw messages) and says so.

    A conversation has one open ticket per reason: asking again counts on it, and the customer
    hears the number of that ticket (the same ``utter_handoff``), not of a new one.
    """

    def name(self) -> str:
        """The action's name in the domain."""
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        """Write (or count on) the conversation's handoff ticket; tell the customer its number."""
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        intents = [
            (e.get("parse_data") or {}).get("intent", {}).get("name")
            for e in tracker.events
            if e.get("event") == "user"
        ]
        reason = "fallback" if UNHANDLED_INTENTS & set(intents[-3:]) else "request"
        try:
            ticket = tickets().create(
                sender_id=tracker.sender_id,
                reason=reason,
                last_intent=intent,
                order_id=tracker.get_slot("order_id"),
            )
        except KefuError as exc:
            logger.error("handoff.failed code=%s", exc.code)
            dispatcher.utter_message(text=exc.user_message_in(customer_language(tracker)))
            return []
        logger.info("handoff.ticket reason=%s count=%d", reason, ticket.count)
        dispatcher.utter_message(response="utter_handoff", ticket_id=ticket.ticket_id)
        return [SlotSet("ticket_id", ticket.ticket_id)]
