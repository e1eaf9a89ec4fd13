"""Every Rasa-facing store in one place: what Rasa persists, and how it survives a restart.

* :mod:`.tracker_store` — ``MaskingTrackerStore``: masks personal data before any event is
  stored, feeds the event broker, and rides out a database restart (``StoreUnavailable``).
* :mod:`.event_broker` — ``MaskingEventBroker``: masks every event before another broker sends it.
* :mod:`.pika_broker` — ``ReliablePikaEventBroker``: RabbitMQ with publisher confirms, in order.
* :mod:`.lock_store` — Rasa's Redis lock store, atomic across replicas and waiting for Redis.
* :mod:`.handoff_queue` — SQLite queue of handoffs the action server turns into tickets.

Their errors are in :mod:`components.errors` (``StoreUnavailable``, ``ConfigError``). The masking
itself is an engine in :mod:`components.privacy`.
"""
