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

# KEYS: answer, flight (one hash tag). ARGV: our job id, flight ttl.
# Returns {1, answer} on a hit, else {0, the job id answering the request now}.
LOOKUP = """
local answer = redis.call('GET', KEYS[1])
if answer then return {1, answer} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then return {0, ARGV[1]} end
return {0, redis.call('GET', KEYS[2])}
"""


def digest(request: Mapping[str, Any]) -> str:
    """Stable hash of a Claude request: key order and whitespace do not matter."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


class ResponseCache:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl = ttl_seconds
        self._lookup = redis.register_script(LOOKUP)

    async def lookup(self, key: str, job_id: str) -> tuple[dict[str, Any] | None, str]:
        """One round trip: the cached answer, or else who answers this request now — our
        `job_id` if we became the leader, or the leader's job id."""
        hit, value = await self._lookup([keys.response_cache(key), keys.flight(key)],
                                        [job_id, FLIGHT_TTL_SECONDS])
        if hit:
            entry: dict[str, Any] = json.loads(value)
            return entry, entry["job_id"]
        return None, as_str(value)

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
