"""Redis connections for every process: a blocking pool, so a burst waits for a free connection
instead of failing (redis-py's default pool raises once it holds 100); and scripts in pipelines
without redis-py's extra round trip.

The pool's connections share one `DriverInfo` (the name and version each connection reports
to the server): left to itself, redis-py looks its own version up in the installed packages'
metadata for every new connection, ~0.25 ms idle and several under load — paid by whichever
job's token append first needed one more connection.

With `REDIS_SENTINELS` set, every client asks the sentinels for the master before each new
connection, so a failover moves the process to the promoted replica on its next reconnect;
`REDIS_URL` then gives only the database and credentials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import parse_url
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.commands.core import AsyncScript
from redis.driver_info import DriverInfo
from redis.exceptions import NoScriptError
from redis.sentinel import Sentinel as SyncSentinel
from redis.typing import EncodableT

from shared.settings import Settings

_DRIVER = DriverInfo()
# A sentinel that does not answer is skipped for the next one: waiting long on it only stretches
# the failover every client sits through.
SENTINEL_TIMEOUT = 1.0
# A master that died with its host answers no connection attempt at all: without a limit a
# reconnect would wait out the kernel's (minutes), long past the promotion of its replica.
MASTER_CONNECT_TIMEOUT = 5.0


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool, which finds the master before each new connection, with the blocking
    pool's wait for a free connection (redis-py offers the two only apart)."""


def connect(settings: Settings, max_connections: int = 512, timeout: float = 20.0) -> Redis:
    """The process's Redis: the master Sentinel names when `REDIS_SENTINELS` is set, else
    `REDIS_URL`."""
    options: dict[str, Any] = {"max_connections": max_connections, "timeout": timeout,
                               "health_check_interval": 30, "driver_info": _DRIVER}
    if not settings.redis_sentinels:
        return Redis(connection_pool=BlockingConnectionPool.from_url(settings.redis_url,
                                                                     **options))
    sentinel = Sentinel(sentinel_addresses(settings), sentinel_kwargs=sentinel_options(settings))
    return sentinel.master_for(settings.redis_master_name,
                               connection_pool_class=BlockingSentinelPool,
                               **{**options, **master_options(settings)})


def connect_sync(settings: Settings, **options: Any) -> redis.Redis:
    """A synchronous client to the same Redis as `connect`, for threads without an event loop
    (the worker's metrics endpoint)."""
    if not settings.redis_sentinels:
        return redis.Redis.from_url(settings.redis_url, **options)
    sentinel = SyncSentinel(sentinel_addresses(settings),
                            sentinel_kwargs=sentinel_options(settings))
    return sentinel.master_for(settings.redis_master_name,
                               **{**options, **master_options(settings)})


def sentinel_addresses(settings: Settings) -> list[tuple[str, int]]:
    return [(address.host, address.port) for address in settings.redis_sentinels]


def sentinel_options(settings: Settings) -> dict[str, Any]:
    """How to reach the sentinels themselves: they are authenticated apart from the master (and
    refuse a password they were not given one for)."""
    password = settings.redis_sentinel_password
    return {"socket_connect_timeout": SENTINEL_TIMEOUT, "socket_timeout": SENTINEL_TIMEOUT,
            **({"password": password.get_secret_value()} if password else {})}


def master_options(settings: Settings) -> dict[str, Any]:
    """What `REDIS_URL` still says under Sentinel: database, user, password, query options
    (which win, as they do in a URL alone)."""
    options: dict[str, Any] = {"socket_connect_timeout": MASTER_CONNECT_TIMEOUT,
                               **parse_url(settings.redis_url)}
    for name in ("host", "port", "path", "connection_class"):
        options.pop(name, None)
    return options


def queue_script(pipe: Pipeline, script: AsyncScript, keys: Sequence[str],
                 args: Sequence[EncodableT]) -> None:
    """Queue `script` on a pipeline by its digest alone. redis-py's own way (calling the script
    with `client=pipe`) first asks the server whether the script exists: one round trip more on
    every execute. A NOSCRIPT answer (Redis restarted) comes back as that command's result when
    the pipeline runs with `raise_on_error=False` (see `reload_if_lost`); calling the script
    outside a pipeline loads it again."""
    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)


async def reload_if_lost(redis: Redis, results: Sequence[Any], script: AsyncScript) -> list[int]:
    """The positions in `results` where `script` met NOSCRIPT (and so did nothing), after
    loading it again; [] when none did."""
    lost = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
    if lost:
        await redis.script_load(script.script)
    return lost
