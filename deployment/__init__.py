"""Running Kefu: the commands that start it, a local deployment, the multi-replica topology.

One package used by the tests, the benchmarks and ``docs/deployment.md`` alike:

* :mod:`.commands` — ``rasa train`` / ``rasa run`` / ``rasa run actions`` as the Makefile runs
  them, for one assistant.
* :mod:`.servers` — an action server and a Rasa server on free loopback ports (a local
  deployment with a masking SQLite tracker store and event broker).
* :mod:`.topology` — two Rasa replicas and two action servers behind nginx on real PostgreSQL,
  Redis and RabbitMQ: the reference production topology.
* :mod:`.leak_audit` and :mod:`.pii_samples` — synthetic personal data sent through a deployment,
  and the audit that none of it is stored or logged raw.

Nothing here is imported by the runtime (``components``, ``actions``, ``knowledge``).
"""
