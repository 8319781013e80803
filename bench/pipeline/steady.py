"""Section 2 of `bench.pipeline`, at load: the time to first token Sidecar adds while N streams
are in flight at every moment — N users, each starting a new stream as soon as the last one
ends, their first starts spread over one stream's length so that arrivals are steady. The
direct baseline runs the same users with the anthropic SDK against the simulator.

(`ttft.burst` is the harsher case of N submissions in the same instant.)"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common.sdk import sdk_client
from bench.common.stats import spread
from bench.pipeline.clients import (
    Submission,
    defects,
    describe,
    sidecar_clients,
    submit_and_follow,
)
from bench.pipeline.plan import STEADY_SIM, Plan
from bench.pipeline.stack import Stack
from bench.pipeline.ttft import direct_ttft, ttft_breakdown

# Seconds a stream lasts at STEADY_SIM's pace.
STREAM_SECONDS = STEADY_SIM["ttft_ms"] / 1000 + \
    STEADY_SIM["reply_tokens"] / STEADY_SIM["tokens_per_second"]
MAX_TOKENS = STEADY_SIM["reply_tokens"] + 50


async def _user(index: int, users: int, window: tuple[float, float],
                one: Callable[[], Awaitable[float]], ttfts: list[float],
                failures: Counter[str]) -> None:
    """Start a stream, follow it to its end, start the next; from a start offset that spreads
    the users over one stream's length. TTFTs of streams started inside `window` count."""
    await asyncio.sleep(STREAM_SECONDS * index / users)
    while (started := time.monotonic()) < window[1]:
        try:
            ttft = await one()
        except Exception as exc:  # counted; the user goes on
            if window[0] <= started:
                failures[describe(exc)] += 1
            await asyncio.sleep(0.1)
            continue
        if window[0] <= started:
            ttfts.append(ttft)


async def _load(stack: Stack, users: int, seconds: float,
                one: Callable[[int], Callable[[], Awaitable[float]]]) -> dict[str, Any]:
    ttfts: list[float] = []
    failures: Counter[str] = Counter()
    now = time.monotonic()
    window = (now + STREAM_SECONDS * 1.5, now + STREAM_SECONDS * 1.5 + seconds)
    load_before = _loadavg()
    meter = stack.meter()
    await asyncio.gather(*(_user(i, users, window, one(i), ttfts, failures)
                           for i in range(users)))
    used = meter.used()
    await stack.quiesce()
    return {"ttft": spread(ttfts), "failures": dict(failures),
            "cpu_s": {name: round(sec, 2) for name, sec in used.items()},
            "streams_per_s": round(len(ttfts) / seconds, 1),
            "loadavg_1m": [load_before, _loadavg()]}


def _loadavg() -> float:
    return round(os.getloadavg()[0], 2)


async def measure_steady(stack: Stack, plan: Plan) -> dict[str, Any]:
    stack.sim.configure(**STEADY_SIM)
    users, seconds = plan.streams, plan.steady_seconds

    async with sdk_client(stack.sim.url, users, api_key="k") as direct_client:
        def direct(_: int) -> Callable[[], Awaitable[float]]:
            return lambda: direct_ttft(direct_client, MAX_TOKENS)

        direct_run = await _load(stack, users, seconds, direct)

    async with sidecar_clients(stack.api.url, users) as https:
        subs: list[Submission] = []

        def sidecar(i: int) -> Callable[[], Awaitable[float]]:
            async def one() -> float:
                sub = await submit_and_follow(https[i], MAX_TOKENS)
                subs.append(sub)
                return sub.trace.first_token - sub.sent
            return one

        sidecar_run = await _load(stack, users, seconds, sidecar)
        sidecar_run["defects"] = defects((s.trace for s in subs), Counter())
        sidecar_run["breakdown"] = ttft_breakdown(subs)
    return {
        "simulator": STEADY_SIM, "streams_in_flight": users, "stream_seconds": STREAM_SECONDS,
        "window_s": seconds, "direct": direct_run, "sidecar": sidecar_run,
        "added_p50_ms": round(sidecar_run["ttft"]["p50_ms"] - direct_run["ttft"]["p50_ms"], 2),
        "added_p99_ms": round(sidecar_run["ttft"]["p99_ms"] - direct_run["ttft"]["p99_ms"], 2),
    }

