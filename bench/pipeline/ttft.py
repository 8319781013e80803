"""Section 2 of `bench.pipeline`: the time to first token Sidecar adds, against streaming
straight from the simulator with the anthropic SDK; one stream at a time, then N at once."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic

from bench.common.sdk import sdk_client
from bench.common.stats import iso_seconds, spread
from bench.pipeline.clients import (
    Submission,
    defects,
    settle,
    sidecar_clients,
    submit_and_follow,
)
from bench.pipeline.plan import MODEL, PROMPT, TTFT_SIM, Plan
from bench.pipeline.stack import Stack
from bench.pipeline.submit import bare_burst


async def direct_ttft(client: anthropic.AsyncAnthropic, max_tokens: int) -> float:
    """Seconds from the call to the first text delta; the stream is read to its end."""
    sent = time.time()
    first = math.nan
    stream = await client.messages.create(
        model=MODEL, max_tokens=max_tokens, stream=True,
        messages=[{"role": "user", "content": PROMPT}],
    )
    async with stream:
        async for event in stream:
            if (math.isnan(first) and event.type == "content_block_delta"
                    and event.delta.type == "text_delta"):
                first = time.time() - sent
    return first


@dataclass
class TtftSamples:
    direct: list[float] = field(default_factory=list)
    sidecar: list[Submission] = field(default_factory=list)
    direct_failures: Counter[str] = field(default_factory=Counter)
    sidecar_failures: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, Counter[str]] = field(
        default_factory=lambda: {"direct": Counter(), "sidecar": Counter()}
    )
    bare_celery: list[float] = field(default_factory=list)  # send→start, bursts only


async def ttft_round(stack: Stack, streams: int, samples: TtftSamples) -> None:
    """One burst of `streams` in each mode, all fired at once, on fresh connections."""
    tokens = TTFT_SIM["reply_tokens"]
    # One SDK client, as the worker builds its own, with a connection per stream.
    async with sdk_client(stack.sim.url, streams, api_key="k") as direct:
        meter = stack.meter()
        firsts, failed = await settle(direct_ttft(direct, tokens) for _ in range(streams))
        samples.cpu["direct"].update(meter.used())
    samples.direct += firsts
    samples.direct_failures.update(failed)
    await stack.quiesce()
    async with sidecar_clients(stack.api.url, streams) as users:
        meter = stack.meter()
        subs, failed = await settle(submit_and_follow(http, tokens) for http in users)
        samples.cpu["sidecar"].update(meter.used())
    samples.sidecar += subs
    samples.sidecar_failures.update(failed)
    await stack.quiesce()
    if streams > 1:  # Celery's own intake of the same burst, for comparison
        samples.bare_celery += await asyncio.to_thread(bare_burst, stack.redis.url, streams)
        await stack.quiesce()


def ttft_breakdown(subs: Sequence[Submission]) -> dict[str, dict[str, float]]:
    """Where a Sidecar TTFT goes, from the job's own timestamps (ms resolution)."""
    parts: dict[str, list[float]] = {"post_roundtrip": [], "sent_to_started_at": [],
                                     "started_at_to_first_token_at": [],
                                     "first_token_at_to_client": []}
    for sub in subs:
        job = sub.trace.job
        if not (job.get("started_at") and job.get("first_token_at")):
            continue  # the job failed: counted in `defects`
        started, first = iso_seconds(job["started_at"]), iso_seconds(job["first_token_at"])
        parts["post_roundtrip"].append(sub.accepted - sub.sent)
        parts["sent_to_started_at"].append(started - sub.sent)
        parts["started_at_to_first_token_at"].append(first - started)
        parts["first_token_at_to_client"].append(sub.trace.first_token - first)
    return {name: spread(values) for name, values in parts.items()}


def ttft_report(samples: TtftSamples) -> dict[str, Any]:
    direct = spread(samples.direct)
    sidecar = spread([s.trace.first_token - s.sent for s in samples.sidecar])
    return {
        "direct": direct,
        "sidecar": sidecar,
        "added_p50_ms": round(sidecar["p50_ms"] - direct["p50_ms"], 2),
        "added_p99_ms": round(sidecar["p99_ms"] - direct["p99_ms"], 2),
        "sidecar_breakdown": ttft_breakdown(samples.sidecar),
        "direct_failures": dict(samples.direct_failures),
        "defects": defects((s.trace for s in samples.sidecar), samples.sidecar_failures),
        "cpu_s": {mode: {name: round(sec, 2) for name, sec in used.items()}
                  for mode, used in samples.cpu.items()},
        **({"bare_celery_send_to_start": spread(samples.bare_celery)}
           if samples.bare_celery else {}),
    }


async def measure_ttft(stack: Stack, plan: Plan) -> dict[str, Any]:
    stack.sim.configure(**TTFT_SIM)
    await ttft_round(stack, plan.streams, TtftSamples())  # warm the worker's pool and threads
    single = TtftSamples()
    for _ in range(plan.singles):
        await ttft_round(stack, 1, single)
    burst = TtftSamples()
    for _ in range(plan.rounds):
        await ttft_round(stack, plan.streams, burst)
    return {"simulator": TTFT_SIM, "1_stream": ttft_report(single),
            f"{plan.streams}_streams": ttft_report(burst)}
