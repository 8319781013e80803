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
from shared.lua import source

FLIGHT_TTL_SECONDS = 600  # an identical request follows a leader's job for at most this long


def digest(request: Mapping[str, Any]) -> str:
    """Stable hash of a Claude request: key order and whitespace do not matter."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


class ResponseCache:
    """The cache's settings and what the API does to it outside the scripts: the answer is
    stored, and the flight freed, by the script that ends the leader's job
    (`shared/lua/job/finish.lua`); the lookups happen in the submit script."""

    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl = ttl_seconds
        self._abandon = redis.register_script(source("delete_if"))

    async def abandon(self, key: str, leader: str) -> None:
        """The leader a request was to follow is gone: free its flight, so the next identical
        request leads (unless another leader took the flight meanwhile)."""
        await self._abandon([keys.flight(key)], [leader])
