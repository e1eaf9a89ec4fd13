"""An event broker wrapper that never publishes raw personal data.

Set it in ``endpoints.yml``::

    event_broker:
      type: components.stores.event_broker.MaskingEventBroker
      inner:                      # any Rasa event broker configuration
        type: file                # or pika / kafka / sql, with their usual keys
        path: .kefu/events.jsonl

Every event is masked by :func:`components.privacy.event_masking.mask_event` (the same masking the
tracker store wrapper applies) before the inner broker sees it, so Kafka topics, RabbitMQ queues,
SQL event tables and ``rasa export`` runs only ever carry tokens like ``[PHONE_1d37a3d9]``.
Each event's ``sender_id`` is published as the conversation's sender token (``sender_`` and 16 hex
digits, :meth:`~components.privacy.pii.PIIMasker.sender_token`, the one the masking tracker store
saves under), since a channel may use a phone number or e-mail address as the sender id.
It also covers trackers saved by a store that does not mask (e.g. a plain ``SQL`` store).
"""

from __future__ import annotations

import logging
from asyncio import AbstractEventLoop
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

from components.errors import ConfigError
from components.paths import lock_down
from components.privacy.event_masking import mask_event
from components.privacy.pii import PIIMasker
from components.services import get_services

logger = logging.getLogger(__name__)


class MaskingEventBroker(EventBroker):
    """Masks personal data in each event, then publishes it through the inner broker.

    Args:
        inner: The broker that actually publishes.
        masker: The masker (reversible when it has a vault).
    """

    def __init__(self, inner: EventBroker, masker: PIIMasker) -> None:
        self._inner = inner
        self._masker = masker

    @classmethod
    async def from_endpoint_config(
        cls,
        broker_config: EndpointConfig | None,
        event_loop: AbstractEventLoop | None = None,
    ) -> MaskingEventBroker | None:
        """Build the inner broker from the ``inner`` key and wrap it.

        Raises:
            ConfigError: when ``inner`` is missing, is not a mapping, or names this class.
        """
        lock_down()  # umask 077 + owner-only KEFU_HOME before Rasa writes a file
        if broker_config is None:
            return None
        inner_config = broker_config.kwargs.get("inner")
        if not isinstance(inner_config, dict) or not inner_config.get("type"):
            raise ConfigError(
                "event_broker.inner",
                inner_config,
                "a Rasa event broker configuration with a 'type' (file, pika, kafka, sql)",
            )
        if str(inner_config["type"]).endswith(cls.__name__):
            raise ConfigError("event_broker.inner.type", inner_config["type"], "another broker")
        inner = await EventBroker.create(EndpointConfig.from_dict(inner_config), event_loop)
        if inner is None:
            raise ConfigError("event_broker.inner.type", inner_config["type"], "a loadable broker")
        masker = get_services().pii  # the same masker (and vault) as the tracker store
        logger.info(
            "event_broker.masking inner=%s reversible=%s",
            type(inner).__name__,
            masker.vault is not None,
        )
        return cls(inner, masker)

    def publish(self, event: dict[str, Any]) -> None:
        """Publish the masked copy of ``event`` (its ``sender_id`` replaced by the sender token)."""
        self._inner.publish(mask_event(self._masker, event))

    def is_ready(self) -> bool:
        """Whether the inner broker is ready."""
        return self._inner.is_ready()

    async def close(self) -> None:
        """Close the inner broker."""
        await self._inner.close()
