"""The plain function that runs a job (`workers.runner.run_job`), without Celery: a real
redis-server and the simulator. A job whose message carries hints takes capacity and its claim
in one round trip; without hints, or without capacity, it takes the patient path — and no path
leaks capacity it took."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from shared import keys
from shared.cache import ResponseCache
from shared.jobspec import hints, job_fields
from shared.jobstore import JobStore
from shared.limiter import Limiter
from shared.metrics import Tally
from shared.schemas import JobRequest
from shared.settings import load_settings
from shared.taskwire import Hints, run_job_message
from workers import claude
from workers.context import Context
from workers.metrics import WorkerMetrics
from workers.runner import prepare, run_job


@pytest.fixture
async def ctx(redis_url: str, simulator: Any) -> AsyncIterator[Context]:
    settings = load_settings(redis_url=redis_url, anthropic_base_url=simulator.url)
    redis = Redis.from_url(redis_url)
    client = claude.create_client(settings, 10)
    context = Context(settings=settings, store=JobStore(redis, 3600), client=client,
                      worker_name="test:1", limiter=Limiter(redis, settings),
                      cache=ResponseCache(redis, 60), tally=Tally(redis),
                      metrics=WorkerMetrics(redis_url))
    await prepare(context)  # as a worker's runtime does when it starts
    yield context
    await client.close()
    await redis.aclose()


async def submit(ctx: Context, message: str) -> tuple[str, Hints]:
    request = JobRequest.model_validate({"type": "chat", "input": {"message": message},
                                         "max_tokens": 20, "cache": False})
    fields = job_fields(request, ctx.settings)
    fields["cache_key"] = ""
    job_hints = hints(fields, ctx.settings)
    assert job_hints is not None
    kind, _ = await ctx.store.submit(fields, run_job_message(fields["id"], "interactive",
                                                             job_hints))
    assert kind == "created"
    return fields["id"], job_hints


async def in_flight(ctx: Context, model: str) -> int:
    return int(await ctx.store.redis.zcard(keys.inflight(model)))


def claimed_at_once(caplog: pytest.LogCaptureFixture) -> list[bool]:
    return [r.claimed_at_once for r in caplog.records if r.getMessage() == "job started"]


async def test_hints_take_capacity_and_the_claim_in_one_step(
        ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    job_id, job_hints = await submit(ctx, "Is the soil dry in Ashburton?")
    caplog.set_level(logging.INFO, "sidecar.worker")
    assert await run_job(ctx, job_id, job_hints) == "succeeded"
    record = await ctx.store.get(job_id) or {}
    assert record["attempts"] == "1" and record["started_at"] and record["result"]
    assert claimed_at_once(caplog) == [True]
    assert await in_flight(ctx, job_hints.model) == 0  # settled when the call ended


async def test_without_hints_the_record_is_read_first(
        ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    job_id, _ = await submit(ctx, "And in Methven?")
    caplog.set_level(logging.INFO, "sidecar.worker")
    assert await run_job(ctx, job_id) == "succeeded"
    assert claimed_at_once(caplog) == [False]


async def test_no_capacity_now_waits_queued_then_runs(
        ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    job_id, job_hints = await submit(ctx, "Will it rain in Geraldine?")
    await ctx.limiter.cooldown(job_hints.model, 0.4)  # as after a 429 with retry-after
    caplog.set_level(logging.INFO, "sidecar.worker")
    assert await run_job(ctx, job_id, job_hints) == "succeeded"
    assert claimed_at_once(caplog) == [False]
    statuses = [e.decode().split("data: ")[1].strip() for e in
                await ctx.store.redis.lrange(keys.events(job_id), 0, -1)
                if b"event: status" in e]
    assert statuses == ['{"status":"queued"}', '{"status":"running"}']
    assert await in_flight(ctx, job_hints.model) == 0


async def test_a_finished_or_missing_job_gives_back_its_capacity(ctx: Context) -> None:
    job_id, job_hints = await submit(ctx, "How green is Fairlie?")
    assert await run_job(ctx, job_id, job_hints) == "succeeded"
    assert await run_job(ctx, job_id, job_hints) == "finished"
    assert await run_job(ctx, "no-such-job", job_hints) == "missing"
    assert await in_flight(ctx, job_hints.model) == 0
    assert (await ctx.store.get(job_id) or {})["attempts"] == "1"


async def test_scripts_lost_by_a_redis_restart_fall_back(
        ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    job_id, job_hints = await submit(ctx, "What of Timaru?")
    await ctx.store.redis.script_flush()
    caplog.set_level(logging.INFO, "sidecar.worker")
    assert await run_job(ctx, job_id, job_hints) == "succeeded"
    assert await in_flight(ctx, job_hints.model) == 0
    second, second_hints = await submit(ctx, "What of Oamaru?")
    assert await run_job(ctx, second, second_hints) == "succeeded"
    assert claimed_at_once(caplog) == [False, True]  # the patient path loaded the scripts
