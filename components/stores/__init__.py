"""Stores shared by several Rasa replicas, made to ride out a restart of their server.

* :mod:`.lock_store` — Rasa's Redis lock store that waits for Redis instead of failing a turn.

The tracker store and the event broker wrappers live in :mod:`components.privacy` (they mask).
"""
