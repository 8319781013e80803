"""The transport Celery reaches the Redis broker with: kombu's own, keeping one Redis client
per channel for its synchronous calls.

kombu builds a new `redis.Redis` for every such call, and a worker makes two per job in the
thread that hands out every job: one to note the message as unacknowledged when it arrives (late
acknowledgement), one to acknowledge it. Building a client copies redis-py's table of reply
callbacks (~50 µs, more under load); one per channel, over the channel's pool, is thread-safe.

It is installed under kombu's own `redis://` and `sentinel://` names rather than a scheme of its
own, so broker URLs stay plain and tools that read them (Flower's broker view) still recognise
Redis. Under Sentinel the kept client is as safe: its pool asks the sentinels for the master
before each new connection, so after a failover it follows the promoted replica.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kombu.transport import TRANSPORT_ALIASES, redis

from shared.redis import sentinel_options
from shared.settings import Settings


class _OneSyncClient:
    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the consumer's own connection for BRPOP: kombu keeps it already
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        if self._sync_client is None:
            self._sync_client = super()._create_client()  # type: ignore[misc]
        return self._sync_client


class Channel(_OneSyncClient, redis.Channel):
    pass


class SentinelChannel(_OneSyncClient, redis.SentinelChannel):
    pass


class Transport(redis.Transport):
    Channel = Channel


class SentinelTransport(redis.SentinelTransport):
    Channel = SentinelChannel


def install() -> None:
    """Make `redis://`, `rediss://` and `sentinel://` broker URLs use these transports in this
    process."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
    TRANSPORT_ALIASES["sentinel"] = f"{__name__}:SentinelTransport"


def broker_url(settings: Settings) -> str:
    """`REDIS_URL`, or under Sentinel kombu's list of sentinels, each entry carrying the URL's
    credentials and database (kombu reads them from the first entry, its sentinels from all)."""
    if not settings.redis_sentinels:
        return settings.redis_url
    url = urlsplit(settings.redis_url)
    credentials = url.netloc.rpartition("@")[0]
    login = f"{credentials}@" if credentials else ""
    return ";".join(f"sentinel://{login}{address}{url.path or '/0'}"
                    for address in settings.redis_sentinels)


def transport_options(settings: Settings) -> dict[str, Any]:
    """kombu's Sentinel options: the master's name, and how to reach the sentinels."""
    if not settings.redis_sentinels:
        return {}
    return {"master_name": settings.redis_master_name,
            "sentinel_kwargs": sentinel_options(settings)}
