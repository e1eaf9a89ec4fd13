"""Input channels for Rasa with bounded inputs and a reply to every turn.

* :mod:`.rest` — the Rasa adapter: ``GuardedRestInput``, the ``rest`` channel hardened.
* :mod:`.options` — its ``credentials.yml`` options.
* :mod:`.validation` — request body size and JSON shape, as 4xx errors with clear messages.
* :mod:`.limits` — per-sender token buckets (in memory, per process, bounded).
* :mod:`.silence` — apology texts and the failed-custom-action check for silent turns.
* :mod:`.handoff_queue` — SQLite queue of handoffs the action server turns into tickets.

Only :mod:`.rest` imports Rasa; the other modules are engines.
"""
