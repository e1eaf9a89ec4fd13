"""Input channels for Rasa with bounded inputs and a reply to every turn.

* :mod:`.rest` — the Rasa adapter: ``GuardedRestInput``, the ``rest`` channel hardened.
* :mod:`.socketio`, :mod:`.slack`, :mod:`.telegram` — Rasa's ``socketio`` (with the web chat page,
  :mod:`.webchat`), ``slack`` and ``telegram`` channels with the same limits.
* :mod:`.turns` — shared by the adapters: run a turn, apologise for a silent one.
* :mod:`.platforms` — Slack and Telegram payloads read defensively (an engine).
* :mod:`.options` — its ``credentials.yml`` options.
* :mod:`.validation` — request body size and JSON shape, as 4xx errors with clear messages.
* :mod:`.sessions` — socket.io session ids and the origin allow-list.
* :mod:`.limits` — per-sender token buckets (in memory, per process, bounded).
* :mod:`.silence` — apology texts and the failed-custom-action check for silent turns.

Only the adapters (:mod:`.rest`, :mod:`.socketio`, :mod:`.slack`, :mod:`.telegram`,
:mod:`.turns`) import Rasa; the other modules are engines.
"""
