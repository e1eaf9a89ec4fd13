"""Rasa adapter shared by every guarded channel: run a turn, and answer a silent one.

A channel hands each validated :class:`~rasa.core.channels.channel.UserMessage` to
:meth:`TurnGuard.run`, which lets Rasa handle it and logs a failure by type and code location
(never the user's text). When the turn produced no bot message, :meth:`TurnGuard.apology` returns
the apology in the customer's language (:mod:`.silence`), records it on the tracker as a bot message
and, when the turn ended in a custom action that said nothing (the action server was down), queues a
handoff (:mod:`components.stores.handoff_queue`). When that failure hit a form (its validation
action could not run, so the customer's answer was never checked), the form is stopped with it
(:func:`stale_form_events`): otherwise the next message, whatever it says, would be taken as
the answer to the stale question (and, for the order form, use up a verification attempt).
The REST, socket.io, Slack and Telegram channels
all go through here, so customers get the same answer on every channel.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from asyncio import CancelledError
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.lock_store import LockError
from rasa.shared.core.constants import DEFAULT_ACTION_NAMES, REQUESTED_SLOT
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Event,
    Restarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from components.channels import silence
from components.channels.options import RestOptions
from components.errors import StoreUnavailable
from components.stores import handoff_queue

logger = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]
#: Marks the apology's bot event in the tracker (its metadata).
GUARD_MARK = "kefu_silence_guard"


def frames(exc: BaseException) -> str:
    """Where an exception happened: file, line and code only, not its message (user text)."""
    return "".join(traceback.format_tb(exc.__traceback__))


def sender_ref(sender: str) -> str:
    """The sender as the token logs and tickets use (never the raw id)."""
    try:
        return handoff_queue.sender_token(str(sender))
    except Exception:  # logging must not fail
        return "[SENDER_unknown]"


def turn_of(tracker: DialogueStateTracker | None, message_id: str) -> list[silence.Step] | None:
    """The steps after the user message ``message_id``; None when it is not in the tracker."""
    if tracker is None:
        return None
    events = list(tracker.events)
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if isinstance(event, UserUttered) and event.message_id == message_id:
            steps = []
            for later in events[index + 1 :]:
                if isinstance(later, ActionExecuted):
                    steps.append(silence.Step("action", later.action_name or ""))
                elif isinstance(later, BotUttered):
                    steps.append(silence.Step("bot"))
                elif isinstance(later, Restarted):
                    steps.append(silence.Step("restart"))
            return steps
    return None


def stale_form_events(
    tracker: DialogueStateTracker, message_id: str, failed: str, domain: Any
) -> list[Event]:
    """The events that stop a form whose turn ended in the failed custom action ``failed``.

    Rasa 3.6 drops the events of an action that raised (``MessageProcessor._run_action``): when
    the form's validation action could not be reached, the form stays active, still asking for
    ``requested_slot``, with the slots that ``action_extract_slots`` took from the customer's
    message set but never validated. The form is deactivated, ``requested_slot`` cleared and
    the form's slots set during the turn (``message_id``'s) are reset, so that the customer
    starts the form again from a clean state.

    Args:
        tracker: The conversation after the turn.
        message_id: The turn's user message.
        failed: The custom action the turn ended in.
        domain: The assistant's domain (its forms), or None when unknown.

    Returns:
        The events (none when no form was active and ``failed`` is not a form).
    """
    forms = set(getattr(domain, "form_names", None) or ())
    active = tracker.active_loop_name
    form = active or (failed if failed in forms else None)
    if form is None:
        return []
    form_slots = set(domain.required_slots_for_form(form)) if form in forms else set()
    requested = tracker.get_slot(REQUESTED_SLOT) if REQUESTED_SLOT in tracker.slots else None
    if requested:
        form_slots.add(str(requested))
    set_in_turn: set[str] = set()
    for event in reversed(list(tracker.events)):
        if isinstance(event, UserUttered) and event.message_id == message_id:
            break
        if isinstance(event, SlotSet):
            set_in_turn.add(event.key)
    events: list[Event] = [ActiveLoop(None)] if active else []
    if REQUESTED_SLOT in tracker.slots:
        events.append(SlotSet(REQUESTED_SLOT, None))
    events += [SlotSet(name, None) for name in sorted(set_in_turn & form_slots)]
    return events


class TurnGuard:
    """Runs turns for one channel and apologises for the silent ones.

    Args:
        channel: The channel's name, for logs and handoff records (``rest``, ``socketio`` ...).
        silence_guard: Apologise when a turn produced no bot message.
        handoff_on_failure: Queue a handoff when that turn ended in a failed custom action.
    """

    def __init__(
        self, channel: str, silence_guard: bool = True, handoff_on_failure: bool = True
    ) -> None:
        self.channel = channel
        self.silence_guard = silence_guard
        self.handoff_on_failure = handoff_on_failure

    @classmethod
    def for_channel(cls, channel: str, options: RestOptions) -> TurnGuard:
        """The guard a channel's options configure (silence guard, handoff on failure)."""
        return cls(channel, options.silence_guard, options.handoff_on_failure)

    async def run(self, on_new_message: OnNewMessage, message: UserMessage) -> str:
        """Let Rasa handle the message; a failure is logged (no text) and leaves the turn silent.

        Returns:
            ``ok``, ``failed`` (an error; what was sent stays sent), or ``store_unavailable``
            (the tracker store or the lock store could not be reached: nothing of the turn
            was stored, so what it produced must not be shown either).
        """
        try:
            await on_new_message(message)
            return "ok"
        except StoreUnavailable as unavailable:
            logger.error(
                "channels.%s.store_unavailable sender=%s operation=%s",
                self.channel,
                sender_ref(message.sender_id),
                unavailable.operation,
            )
            return "store_unavailable"
        except LockError:
            logger.error(
                "channels.%s.lock_unavailable sender=%s",
                self.channel,
                sender_ref(message.sender_id),
            )
            return "store_unavailable"  # the turn never ran: nothing was stored
        except CancelledError:
            logger.error(
                "channels.%s.turn_timeout sender=%s", self.channel, sender_ref(message.sender_id)
            )
        except Exception as exc:
            logger.error(
                "channels.%s.turn_failed sender=%s error=%s\n%s",
                self.channel,
                sender_ref(message.sender_id),
                type(exc).__name__,
                frames(exc),
            )
        return "failed"

    async def run_answered(
        self,
        on_new_message: OnNewMessage,
        message: UserMessage,
        output: CountingOutput,
        agent: Any,
        send: Callable[[str], Awaitable[Any]],
    ) -> str:
        """Run the turn; if it sent nothing, send the apology with ``send(text)``.

        For channels that deliver replies as they come (socket.io, Slack, Telegram): ``output``
        counts what the turn sent. A failure to deliver the apology is only logged.

        Returns:
            The outcome of :meth:`run`.
        """
        outcome = await self.run(on_new_message, message)
        if output.sent and outcome != "store_unavailable":
            return outcome  # (what was sent was not stored: say so, so the customer repeats it)
        apology = await self.apology(agent, message, store_reachable=outcome != "store_unavailable")
        if apology is not None:
            try:
                await send(apology["text"])
            except Exception as exc:
                logger.error(
                    "channels.%s.apology_failed error=%s", self.channel, type(exc).__name__
                )
        return outcome

    async def apology(
        self, agent: Any, message: UserMessage, store_reachable: bool = True
    ) -> dict | None:
        """The apology for a turn without bot messages (None: silence was expected or off).

        Args:
            agent: The Rasa agent (its tracker and lock stores), or None when unknown.
            message: The turn's user message.
            store_reachable: False when the turn failed because the tracker store could not
                be reached (then it is not tried again for the apology).
        """
        if not self.silence_guard and store_reachable:
            return None
        language = silence.reply_language(message.text or "")
        store = getattr(agent, "tracker_store", None) if store_reachable else None
        locks = getattr(agent, "lock_store", None)
        failed, handoff, stopped = None, False, False
        try:
            if store is not None and locks is not None:
                async with locks.lock(message.sender_id):
                    tracker = await store.retrieve(message.sender_id)
                    if tracker is not None:
                        language = silence.reply_language(
                            message.text or "", tracker.get_slot("language")
                        )
                    turn = turn_of(tracker, message.message_id)
                    if turn is not None and silence.is_quiet_turn(turn):
                        return None
                    if turn is not None:
                        failed = silence.failed_custom_action(turn, DEFAULT_ACTION_NAMES)
                    if failed and self.handoff_on_failure:
                        handoff = await self._queue_handoff(message, failed, language)
                    if turn is not None and tracker is not None:
                        resets = (
                            stale_form_events(
                                tracker, message.message_id, failed, getattr(agent, "domain", None)
                            )
                            if failed
                            else []
                        )
                        text = silence.apology(language, handoff=handoff, form_stopped=bool(resets))
                        recorded = await self._record(store, tracker, text, resets)
                        stopped = bool(resets) and recorded
        except (Exception, StoreUnavailable) as exc:
            logger.error(
                "channels.%s.silence_guard_failed error=%s\n%s",
                self.channel,
                type(exc).__name__,
                frames(exc),
            )
        text = silence.apology(language, handoff=handoff, form_stopped=stopped)
        logger.warning(
            "channels.%s.silent_turn sender=%s failed_action=%s handoff=%s form_stopped=%s "
            "language=%s",
            self.channel,
            sender_ref(message.sender_id),
            failed,
            handoff,
            stopped,
            language,
        )
        return {"recipient_id": message.sender_id, "text": text}

    async def _queue_handoff(self, message: UserMessage, action: str, language: str) -> bool:
        def enqueue() -> None:
            record = handoff_queue.HandoffRecord(
                sender=handoff_queue.sender_token(message.sender_id),
                reason="action_failed",
                action=action,
                language=language,
                channel=message.input_channel or self.channel,
            )
            handoff_queue.enqueue(record)

        try:
            await asyncio.to_thread(enqueue)
        except Exception as exc:
            logger.error(
                "channels.%s.handoff_queue_failed error=%s", self.channel, type(exc).__name__
            )
            return False
        return True

    async def _record(
        self,
        store: Any,
        tracker: DialogueStateTracker,
        text: str,
        before: list[Event] | None = None,
    ) -> bool:
        """Append ``before`` and the apology (a bot message) to the conversation.

        Returns:
            Whether it was saved (a failure is only logged).
        """
        try:
            for event in before or []:
                tracker.update(event)
            tracker.update(BotUttered(text, metadata={GUARD_MARK: True}))
            await store.save(tracker)
        except Exception as exc:
            logger.error(
                "channels.%s.apology_not_recorded error=%s", self.channel, type(exc).__name__
            )
            return False
        return True


class AppAgent:
    """Mixin for channels: ``self.agent`` is the Rasa agent the app holds *now*.

    Rasa loads the agent in a ``before_server_start`` listener registered after the channels'
    blueprints, and ``PUT /model`` replaces it later: reading ``app.ctx.agent`` once at start-up
    would keep None or a stale agent. A channel calls :meth:`remember_app` from a listener.
    """

    _app: Any = None

    def remember_app(self, app: Any) -> None:
        """Keep the Sanic app (its ``ctx.agent`` is read on every use)."""
        self._app = app

    @property
    def agent(self) -> Any:
        """The app's current Rasa agent, or None before it is loaded."""
        return getattr(getattr(self._app, "ctx", None), "agent", None)


class CountingOutput(OutputChannel):
    """Wraps a channel's output channel and counts the bot messages sent through it.

    Rasa sends every bot message with ``send_response``; a turn that sent none was silent.

    Args:
        inner: The channel's own output channel.
        recipient: Where replies go when it is not the conversation id (a Telegram chat id:
            conversations are ``telegram:<chat id>``).
    """

    def __init__(self, inner: OutputChannel, recipient: str | None = None) -> None:
        self.inner = inner
        self.recipient = recipient
        self.sent = 0

    def name(self) -> str:  # type: ignore[override]
        """The wrapped channel's name."""
        return self.inner.name()

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Send through the wrapped channel and count it."""
        self.sent += 1
        await self.inner.send_response(self.recipient or recipient_id, message)
