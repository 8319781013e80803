"""Redis connections for every process: a blocking pool, so a burst waits for a free connection
instead of failing (redis-py's default pool raises once it holds 100); and scripts in pipelines
without redis-py's extra round trip.

The pool's connections share one `DriverInfo` (the name and version each connection reports
to the server): left to itself, redis-py looks its own version up in the installed packages'
metadata for every new connection, ~0.25 ms idle and several under load — paid by whichever
job's token append first needed one more connection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.driver_info import DriverInfo
from redis.exceptions import NoScriptError
from redis.typing import EncodableT

_DRIVER = DriverInfo()


def connect(url: str, max_connections: int = 512, timeout: float = 20.0) -> Redis:
    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=timeout,
                                           health_check_interval=30, driver_info=_DRIVER)
    return Redis(connection_pool=pool)


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
