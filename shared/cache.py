"""The response cache: identical requests (same model, messages, system, max_tokens,
temperature — a stable hash of the Claude request) answer from Redis, and identical requests in
flight share one upstream call (single-flight: the first becomes the leader, the rest follow its
job). Looking up and taking the flight happen in the submit script (`scripts.SUBMIT`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from shared import keys

FLIGHT_TTL_SECONDS = 600  # an identical request follows a leader's job for at most this long


def digest(request: Mapping[str, Any]) -> str:
    """Stable hash of a Claude request: key order and whitespace do not matter."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


class ResponseCache:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl = ttl_seconds

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
