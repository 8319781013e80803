"""Submitting `bench.ratelimit`'s chat jobs through the API and reading back their records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import httpx
from redis.asyncio import Redis

from bench.common.output import log
from bench.ratelimit.plan import BATCH_TOKENS, INTERACTIVE_TOKENS, Plan
from shared import keys
from shared.schemas import FINISHED

SUBMIT_CONCURRENCY = 8  # more costs the API and this client more CPU per request
T = TypeVar("T")
Record = dict[str, str]


def job_body(priority: str, max_tokens: int, n: int) -> dict[str, Any]:
    message = f"{priority} question {n}: what is the rainfall outlook for the Canterbury plains?"
    return {"type": "chat", "input": {"message": message}, "max_tokens": max_tokens,
            "priority": priority, "cache": False}


async def submit(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await http.post("/api/jobs", json=body)
    response.raise_for_status()
    return str(response.json()["id"])


async def gated(gate: asyncio.Semaphore, work: Awaitable[T]) -> T:
    async with gate:
        return await work


async def delayed(seconds: float, work: Awaitable[T]) -> T:
    await asyncio.sleep(seconds)
    return await work


def api_client(url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=2 * SUBMIT_CONCURRENCY)
    return httpx.AsyncClient(base_url=url, timeout=60, limits=limits)


async def gather_ids(work: Sequence[Awaitable[str]]) -> tuple[list[str], int]:
    """Job ids of the submissions that were accepted, and how many failed."""
    outcomes = await asyncio.gather(*work, return_exceptions=True)
    ids = [o for o in outcomes if isinstance(o, str)]
    for failure in [o for o in outcomes if isinstance(o, BaseException)][:3]:
        log(f"submission failed: {failure!r}")
    return ids, len(outcomes) - len(ids)


async def submit_mix(url: str, plan: Plan) -> tuple[list[str], int]:
    """The batch at once (bounded concurrency), the interactive jobs trickled in evenly over
    90 % of the run's expected window."""
    gap = 0.9 * plan.expected_window / max(1, plan.interactive)
    async with api_client(url) as http:
        gate = asyncio.Semaphore(SUBMIT_CONCURRENCY)
        batch = [gated(gate, submit(http, job_body("batch", BATCH_TOKENS, n)))
                 for n in range(plan.batch)]
        bodies = [job_body("interactive", INTERACTIVE_TOKENS, n) for n in range(plan.interactive)]
        trickle = [delayed(n * gap, submit(http, body)) for n, body in enumerate(bodies)]
        return await gather_ids([*batch, *trickle])


async def submit_at_once(url: str, count: int, max_tokens: int) -> tuple[list[str], int]:
    async with api_client(url) as http:
        gate = asyncio.Semaphore(SUBMIT_CONCURRENCY)
        bodies = [job_body("interactive", max_tokens, n) for n in range(count)]
        return await gather_ids([gated(gate, submit(http, body)) for body in bodies])


async def wait_finished(store: Redis, ids: Sequence[str], timeout: float) -> int:
    """Poll the job records until every job has finished; how many had not by the timeout."""
    pending = list(ids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        async with store.pipeline(transaction=False) as pipe:
            for job_id in pending:
                pipe.hget(keys.job(job_id), "status")
            statuses = await pipe.execute()
        pending = [j for j, s in zip(pending, statuses, strict=True) if s not in FINISHED]
    if pending:
        log(f"{len(pending)} jobs still unfinished after {timeout:.0f} s")
    return len(pending)


async def fetch_records(store: Redis, ids: Sequence[str]) -> list[Record]:
    async with store.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hgetall(keys.job(job_id))
        return list(await pipe.execute())


async def run_jobs(redis_url: str, ids: Sequence[str], timeout: float) -> list[Record]:
    async with Redis.from_url(redis_url, decode_responses=True) as store:
        await wait_finished(store, ids, timeout)
        return await fetch_records(store, ids)
