"""Options of the guarded REST channel, read from its block in ``credentials.yml``.

::

    components.channels.rest.GuardedRestInput:
      max_message_chars: 4000      # longer messages get 413
      max_sender_chars: 128        # longer sender ids get 400
      max_body_bytes: null         # default: 64 KiB, more for max_message_chars over 4096
      rate_per_minute: 30          # per sender, per process; 0 turns rate limiting off
      burst: 10                    # messages a sender may send at once
      max_tracked_senders: 10000   # senders the rate limiter remembers (least recent out)
      silence_guard: true          # apologise when a turn produces no reply
      handoff_on_failure: true     # queue a handoff when a custom action failed silently

Every key is optional; an unknown key or a bad value stops start-up with a
:class:`~components.errors.ConfigError` that names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from components.errors import ConfigError, check_int, check_number

if TYPE_CHECKING:
    from components.channels.limits import RateLimiter

COMPONENT = "channels.rest"


@dataclass(frozen=True)
class RestOptions:
    """Limits and switches of the guarded REST channel.

    Attributes:
        max_message_chars: Longest accepted message, in characters (code points).
        max_sender_chars: Longest accepted sender id, in characters.
        max_body_bytes: Largest accepted request body; None: 64 KiB, or
            ``12 * max_message_chars + 16 KiB`` when that is more (room for the message escaped
            as JSON, where one emoji takes 12 bytes, and for metadata).
        rate_per_minute: Messages per minute one sender may send on average (0: no limit).
        burst: Messages one sender may send in a row before the rate applies.
        max_tracked_senders: Senders whose rate-limit state is kept (least recently seen out).
        silence_guard: Reply with an apology when a turn produces no bot message.
        handoff_on_failure: Queue a handoff when the silent turn ended in a custom action.
    """

    max_message_chars: int = 4000
    max_sender_chars: int = 128
    max_body_bytes: int | None = None
    rate_per_minute: float = 30
    burst: int = 10
    max_tracked_senders: int = 10_000
    silence_guard: bool = True
    handoff_on_failure: bool = True

    def __post_init__(self) -> None:
        """Check every value; raise ConfigError naming the first bad one."""
        for name in ("max_message_chars", "max_sender_chars", "burst", "max_tracked_senders"):
            check_int(name, getattr(self, name), 1, component=COMPONENT)
        if self.max_body_bytes is not None:
            check_int("max_body_bytes", self.max_body_bytes, 1024, component=COMPONENT)
        check_number(
            "rate_per_minute",
            self.rate_per_minute,
            0,
            expected="a number >= 0 (0: no limit)",
            component=COMPONENT,
        )
        for name in ("silence_guard", "handoff_on_failure"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, getattr(self, name), "true or false", component=COMPONENT)

    def rate_limiter(self) -> RateLimiter:
        """A per-sender rate limiter with these options' rate, burst and size."""
        from components.channels.limits import RateLimiter

        return RateLimiter(self.rate_per_minute, self.burst, self.max_tracked_senders)

    @property
    def body_limit(self) -> int:
        """The largest accepted request body, in bytes."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return max(64 * 1024, 12 * self.max_message_chars + 16 * 1024)

    @classmethod
    def from_credentials(
        cls,
        credentials: Mapping[str, Any] | None,
        extra_keys: Collection[str] = (),
        component: str = COMPONENT,
    ) -> RestOptions:
        """Options from the channel's ``credentials.yml`` block (None or empty: defaults).

        Args:
            credentials: The block, without the keys the channel itself has taken out.
            extra_keys: Those other keys of the channel (named in the unknown-key error).
            component: The channel named in the unknown-key error.

        Raises:
            ConfigError: On an unknown key or a bad value.
        """
        if not credentials:
            return cls()
        if not isinstance(credentials, Mapping):
            raise ConfigError("credentials", "(not shown)", "a mapping", component=component)
        known = {f.name for f in dataclasses.fields(cls)}
        for key in credentials:
            if key not in known:
                expected = f"one of {sorted(known | set(extra_keys))}"
                # its value is not shown: a misspelt key may hold a secret
                raise ConfigError(key, "(not shown)", expected, component=component)
        return cls(**dict(credentials))


def credentials_dict(credentials: Any, component: str) -> dict[str, Any]:
    """A channel's ``credentials.yml`` block as a new dict (None: empty).

    Raises:
        ConfigError: When the block is not a mapping (its value is not shown: it may hold tokens).
    """
    if credentials is None:
        return {}
    if not isinstance(credentials, Mapping):
        raise ConfigError(
            "credentials", "(not shown)", "a mapping of the channel's keys", component=component
        )
    return dict(credentials)
