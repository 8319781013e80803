"""The transport Celery reaches the Redis broker with: kombu's own, keeping one Redis client
per channel for its synchronous calls.

kombu builds a new `redis.Redis` for every such call, and a worker makes two per job in the
thread that hands out every job: one to note the message as unacknowledged when it arrives (late
acknowledgement), one to acknowledge it. Building a client copies redis-py's table of reply
callbacks (~50 µs, more under load); one per channel, over the channel's pool, is thread-safe.

It is installed under kombu's own `redis://` names rather than a scheme of its own, so broker
URLs stay plain and tools that read them (Flower's broker view) still recognise Redis.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import TRANSPORT_ALIASES, redis


class Channel(redis.Channel):
    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the consumer's own connection for BRPOP: kombu keeps it already
            return super()._create_client(asynchronous=True)
        if self._sync_client is None:
            self._sync_client = super()._create_client()
        return self._sync_client


class Transport(redis.Transport):
    Channel = Channel


def install() -> None:
    """Make `redis://` and `rediss://` broker URLs use this transport in this process."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
