"""Redis connections for every process: a blocking pool, so a burst waits for a free connection
instead of failing (redis-py's default pool raises once it holds 100)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis


def connect(url: str, max_connections: int = 512, timeout: float = 20.0) -> Redis:
    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=timeout,
                                           health_check_interval=30)
    return Redis(connection_pool=pool)
