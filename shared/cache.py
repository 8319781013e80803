"""The response cache: identical requests (same model, messages, system, max_tokens,
temperature — a stable hash of the Claude request) answer from Redis, and identical requests in
flight share one upstream call (single-flight: the first becomes the leader, the rest follow its
job)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from shared import keys
from shared.jobstore import as_str

FLIGHT_TTL_SECONDS = 600


def digest(request: Mapping[str, Any]) -> str:
    """Stable hash of a Claude request: key order and whitespace do not matter."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


class ResponseCache:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl = ttl_seconds

    async def get(self, key: str) -> dict[str, Any] | None:
        """The cached answer. Lookups are counted in the same round trip; misses are counted
        by the caller on the slow path, so a hit costs one round trip (hits = lookups - misses)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.response_cache(key))
            pipe.hincrby(keys.metric("cache"), "lookups", 1)
            raw, _ = await pipe.execute()
        if raw is None:
            return None
        entry: dict[str, Any] = json.loads(raw)
        return entry

    async def lead(self, key: str, job_id: str) -> str:
        """Become the request's leader (returns our job id) or learn the leader's job id."""
        flight = keys.flight(key)
        if await self.redis.set(flight, job_id, nx=True, ex=FLIGHT_TTL_SECONDS):
            return job_id
        leader = await self.redis.get(flight)
        return as_str(leader) if leader is not None else job_id

    async def put(self, key: str, entry: Mapping[str, Any]) -> None:
        """Store the leader's answer, then let the next identical request lead again."""
        async with self.redis.pipeline(transaction=False) as pipe:
            if self.ttl > 0:
                pipe.set(keys.response_cache(key), json.dumps(entry), ex=self.ttl)
            pipe.delete(keys.flight(key))
            await pipe.execute()

    async def abandon(self, key: str) -> None:
        """The leader failed: nothing to cache, and the next request may try again."""
        await self.redis.delete(keys.flight(key))
