"""Part B of `bench.ratelimit`: how many streams one worker process holds, and at what memory
and CPU, against the bare SDK holding as many in this process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import anthropic

from bench.common.meters import cpu_seconds, rss_kib
from bench.common.output import log
from bench.common.procs import bench_env, running_api, running_worker
from bench.common.sdk import sdk_client
from bench.common.stats import ratio
from bench.ratelimit.jobs import run_jobs, submit_at_once
from bench.ratelimit.plan import (
    MODEL,
    QUEUES,
    STREAM_SLOTS,
    STREAM_TPS,
    STREAM_TTFT_MS,
    Plan,
)
from bench.ratelimit.sampler import Sample, Sampler
from tests.procs import RedisServer
from tests.simulator_fixtures import SimProcess, start_simulator


@dataclass
class Holding:
    """One process holding many streams: how many at once, and what it cost."""

    streams: int
    peak_streams: int
    rss_idle_kib: int
    rss_peak_kib: int
    cpu_s: float
    tokens: int
    succeeded: int
    wall_s: float
    seconds_to_peak: float
    extra: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        per_stream = (self.rss_peak_kib - self.rss_idle_kib) / max(1, self.peak_streams)
        return {**asdict(self), "cpu_s": round(self.cpu_s, 3), "wall_s": round(self.wall_s, 2),
                "kib_per_stream": round(per_stream, 1),
                "cpu_us_per_token": round(1e6 * self.cpu_s / max(1, self.tokens), 2)}


def holding(samples: Sequence[Sample], stats: dict[str, Any], started: float,
            **figures: Any) -> Holding:
    """Figures from the samples; `started` is the wall clock when the streams were asked for."""
    peak = max([int(stats["streams"]["peak_open"]), *(s.open_streams for s in samples)])
    sampled = max((s.open_streams for s in samples), default=0)
    reached = next((s.at for s in samples if s.open_streams >= sampled), started)
    return Holding(peak_streams=peak, rss_peak_kib=max((s.rss_kib for s in samples), default=0),
                   tokens=int(stats["tokens"]["output_tokens"]),
                   seconds_to_peak=round(reached - started, 2), **figures)


async def sdk_stream(client: anthropic.AsyncAnthropic, n: int, max_tokens: int) -> int:
    """Read one raw stream as the worker does, keeping its text; the output tokens."""
    text: list[str] = []
    tokens = 0
    stream = await client.messages.create(
        model=MODEL, max_tokens=max_tokens, stream=True,
        messages=[{"role": "user", "content": f"question {n}: the outlook for the dry season?"}],
    )
    async with stream:
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                text.append(event.delta.text)
            elif event.type == "message_delta":
                tokens = event.usage.output_tokens
    return tokens


async def sdk_holding(plan: Plan, sim: SimProcess) -> Holding:
    """The bare SDK in this process; the sampler thread's CPU is taken off its figure."""
    timeout = anthropic.Timeout(600.0, connect=10.0, read=120.0)
    async with sdk_client(sim.url, plan.streams + 10, timeout=timeout) as client:
        sim.reset()
        pid, idle = os.getpid(), rss_kib(os.getpid())
        cpu, started = time.process_time(), time.time()
        with Sampler(sim.url, pid) as sampler:
            results = await asyncio.gather(
                *(sdk_stream(client, n, plan.stream_tokens) for n in range(plan.streams)),
                return_exceptions=True)
        cpu = time.process_time() - cpu - sampler.cpu
        wall = time.time() - started
    return holding(sampler.samples, sim.stats(), started, streams=plan.streams, rss_idle_kib=idle,
                   cpu_s=cpu, wall_s=wall, succeeded=sum(isinstance(r, int) for r in results))


async def worker_holding(plan: Plan, sim: SimProcess, redis_url: str) -> Holding:
    env = bench_env(redis_url, sim.url, WORKER_CONCURRENCY=str(STREAM_SLOTS),
                    MAX_IN_FLIGHT="2000")
    with contextlib.ExitStack() as stops:
        worker = running_worker(stops, env, "streams", QUEUES, STREAM_SLOTS, grace=5.0)
        api = running_api(stops, env, grace=5.0)
        await asyncio.sleep(1.0)  # let the worker's runtime settle before reading its idle RSS
        pid, idle = worker.proc.pid, rss_kib(worker.proc.pid)
        sim.reset()
        cpu, started = cpu_seconds(pid), time.time()
        with Sampler(sim.url, pid) as sampler:
            ids, errors = await submit_at_once(api.url, plan.streams, plan.stream_tokens)
            records = await run_jobs(redis_url, ids, 2 * plan.stream_seconds + 120)
        cpu = cpu_seconds(pid) - cpu
        wall = time.time() - started
    succeeded = sum(r.get("status") == "succeeded" for r in records)
    return holding(sampler.samples, sim.stats(), started, streams=plan.streams, rss_idle_kib=idle,
                   cpu_s=cpu, wall_s=wall, succeeded=succeeded,
                   extra={"submit_errors": errors, "worker_slots": STREAM_SLOTS})


def holding_ratios(worker: dict[str, Any], sdk: dict[str, Any]) -> dict[str, Any]:
    names = ("peak_streams", "kib_per_stream", "cpu_us_per_token")
    return {name: ratio(worker[name], sdk[name]) for name in names}


async def part_b(plan: Plan, server: RedisServer) -> dict[str, Any]:
    sim = start_simulator(ttft_ms=STREAM_TTFT_MS, tokens_per_second=STREAM_TPS,
                          reply_tokens=plan.stream_tokens, log_level="WARNING")
    try:
        log(f"bare SDK: {plan.streams} streams of {plan.stream_tokens} tokens at {STREAM_TPS}/s")
        sdk = (await sdk_holding(plan, sim)).figures()
        log(f"worker: {plan.streams} jobs at once")
        worker = (await worker_holding(plan, sim, server.url.rsplit("/", 1)[0] + "/2")).figures()
    finally:
        sim.stop()
    return {"simulator": {"ttft_ms": STREAM_TTFT_MS, "tokens_per_second": STREAM_TPS,
                          "reply_tokens": plan.stream_tokens, "limits": "none"},
            "worker": worker, "sdk": sdk, "ratios": holding_ratios(worker, sdk)}
