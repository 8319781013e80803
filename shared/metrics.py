"""Service-wide figures kept in Redis, so that any API process's `/metrics` shows the whole
service (every API and worker process) rather than its own fragment.

Each process counts in memory (a `Tally`) and adds its counts to Redis in one pipeline a few
times a second, so figures cost the request and job paths nothing but a dict update, and Redis
one round trip per process per flush however busy the service is. `/metrics` reads the hashes
at scrape time and renders them with prometheus-client.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from shared import keys
from shared.record import as_str, seconds_between

BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                "cache_read_input_tokens")
FLUSH_SECONDS = 0.25

log = logging.getLogger("sidecar.metrics")


class Tally:
    """Counts added in memory, sent to Redis by `run()` (or `flush()`)."""

    def __init__(self, redis: Redis, every: float = FLUSH_SECONDS) -> None:
        self.redis = redis
        self.every = every
        self._counts: defaultdict[tuple[str, str], float] = defaultdict(float)

    def add(self, name: str, field: str, amount: float = 1) -> None:
        self._counts[(name, field)] += amount

    def observe(self, name: str, value: float) -> None:
        """One sample of a histogram kept as per-bucket counts, a sum and a count."""
        index = bisect.bisect_left(BUCKETS, value)
        self.add(name, str(BUCKETS[index]) if index < len(BUCKETS) else "+Inf")
        self.add(name, "sum", value)
        self.add(name, "count")

    def request(self, endpoint: str, status: int) -> None:
        self.add("requests", f"{endpoint} {status}")

    def submitted(self, job_type: str, cache_miss: bool) -> None:
        """A new job; cache misses are counted here, lookups by the cache itself, and
        hits = lookups - misses."""
        self.add("jobs", f"{job_type} submitted")
        if cache_miss:
            self.add("cache", "misses")

    def job_ended(self, job: Mapping[str, Any]) -> None:
        """A finished job: status, tokens and cost by model, time to first token, duration."""
        self.add("jobs", f"{job['type']} {job['status']}")
        usage = job.get("usage") or {}
        for field in TOKEN_FIELDS:
            if usage.get(field):
                self.add("tokens", f"{job['model']} {field}", usage[field])
        if job.get("cost_usd"):
            self.add("cost", job["model"], job["cost_usd"])
        if (ttft := seconds_between(job.get("created_at"), job.get("first_token_at"))) is not None:
            self.observe("ttft", ttft)
        took = seconds_between(job.get("created_at"), job.get("finished_at"))
        if took is not None and job["status"] == "succeeded":
            self.observe("duration", took)

    async def flush(self) -> None:
        counts, self._counts = self._counts, defaultdict(float)
        if not counts:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for (name, field), amount in counts.items():
                if float(amount).is_integer():
                    pipe.hincrby(keys.metric(name), field, int(amount))
                else:
                    pipe.hincrbyfloat(keys.metric(name), field, amount)
            await pipe.execute()

    async def run(self) -> None:
        """Flush every `every` seconds until cancelled, then a last time."""
        try:
            while True:
                await asyncio.sleep(self.every)
                try:
                    await self.flush()
                except Exception:  # Redis away: these counts are lost, the service is not
                    log.warning("figures not flushed", exc_info=True)
        finally:
            with contextlib.suppress(Exception):
                await self.flush()


async def read(redis: Redis, name: str) -> dict[str, str]:
    raw = await redis.hgetall(keys.metric(name))
    return {as_str(k): as_str(v) for k, v in raw.items()}
