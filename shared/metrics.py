"""Service-wide figures kept in Redis, so that any API process's `/metrics` shows the whole
service (every API and worker process) rather than its own fragment.

Writers add with one pipelined round trip per request or per finished job; `/metrics` reads the
hashes at scrape time and renders them with prometheus-client.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from shared import keys
from shared.jobstore import as_str

BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                "cache_read_input_tokens")


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def _observe(pipe: Any, name: str, value: float) -> None:
    index = bisect.bisect_left(BUCKETS, value)
    le = str(BUCKETS[index]) if index < len(BUCKETS) else "+Inf"
    pipe.hincrby(keys.metric(name), le, 1)
    pipe.hincrbyfloat(keys.metric(name), "sum", value)
    pipe.hincrby(keys.metric(name), "count", 1)


async def count_request(redis: Redis, endpoint: str, status: int) -> None:
    await redis.hincrby(keys.metric("requests"), f"{endpoint} {status}", 1)


def count_submitted(pipe: Any, job_type: str, cache_miss: bool) -> None:
    """Queue the counts of a new job on a pipeline the caller sends anyway. Cache misses are
    counted here; lookups by the cache itself, and hits = lookups - misses."""
    pipe.hincrby(keys.metric("jobs"), f"{job_type} submitted", 1)
    if cache_miss:
        pipe.hincrby(keys.metric("cache"), "misses", 1)


async def record_job(redis: Redis, job: Mapping[str, Any]) -> None:
    """Count a finished job: status, tokens and cost by model, time to first token, duration."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(keys.metric("jobs"), f"{job['type']} {job['status']}", 1)
        usage = job.get("usage") or {}
        for field in TOKEN_FIELDS:
            if usage.get(field):
                pipe.hincrby(keys.metric("tokens"), f"{job['model']} {field}", usage[field])
        if job.get("cost_usd"):
            pipe.hincrbyfloat(keys.metric("cost"), job["model"], job["cost_usd"])
        ttft = _seconds(job.get("created_at"), job.get("first_token_at"))
        if ttft is not None:
            _observe(pipe, "ttft", ttft)
        duration = _seconds(job.get("created_at"), job.get("finished_at"))
        if duration is not None and job["status"] == "succeeded":
            _observe(pipe, "duration", duration)
        await pipe.execute()


async def read(redis: Redis, name: str) -> dict[str, str]:
    raw = await redis.hgetall(keys.metric(name))
    return {as_str(k): as_str(v) for k, v in raw.items()}
