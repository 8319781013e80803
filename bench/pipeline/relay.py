"""Section 3 of `bench.pipeline`: Sidecar relaying tokens to many SSE clients (live, then
replaying the finished jobs), against raw Redis pub/sub."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import PubSub

from bench.common.stats import iso_seconds, spread
from bench.pipeline.clients import (
    Trace,
    defects,
    follow,
    settle,
    sidecar_clients,
    submit_and_follow,
)
from bench.pipeline.plan import LONG_REPLY, RELAY_SIM, Plan
from bench.pipeline.stack import Stack

# A token frame as the worker stores and publishes it: the pub/sub baseline's message.
FRAME = b'id: 42\nevent: token\ndata: {"text":" rainfall"}\n\n'


@dataclass
class Tally:
    received: int = 0
    last: float = math.nan


async def receive(sub: PubSub, expected: int, tally: Tally) -> None:
    async for message in sub.listen():
        if message["type"] != "message":
            continue
        tally.received += 1
        tally.last = time.time()
        if tally.received == expected:
            return


async def publish(client: AsyncRedis, channels: Sequence[str], messages: int) -> None:
    """Every channel gets `messages` frames, round robin, pipelined 1000 at a time."""
    pipe = client.pipeline(transaction=False)
    for index in range(messages * len(channels)):
        pipe.publish(channels[index % len(channels)], FRAME)
        if index % 1000 == 999:
            await pipe.execute()
    await pipe.execute()


async def subscribed(client: AsyncRedis, channels: Sequence[str]) -> None:
    async with asyncio.timeout(10):
        while not all(count for _, count in await client.pubsub_numsub(*channels)):
            await asyncio.sleep(0.01)


async def pubsub_baseline(stack: Stack, plan: Plan) -> dict[str, Any]:
    """Raw redis.asyncio pub/sub: one connection per subscriber, one channel each."""
    # redis-py 8 reads max_connections=None as 100: size the pool for every subscriber.
    client = AsyncRedis.from_url(stack.redis.url, max_connections=plan.clients + 10)
    channels = [f"bench:pubsub:{i}" for i in range(plan.clients)]
    subs = [client.pubsub() for _ in channels]
    tallies = [Tally() for _ in channels]
    try:
        for sub, channel in zip(subs, channels, strict=True):
            await sub.subscribe(channel)
        await subscribed(client, channels)
        meter = stack.meter("redis")
        start = time.time()
        readers = [asyncio.create_task(receive(sub, plan.messages, tally))
                   for sub, tally in zip(subs, tallies, strict=True)]
        await publish(client, channels, plan.messages)
        _, late = await asyncio.wait(readers, timeout=10)
        for reader in late:
            reader.cancel()
        cpu = meter.used()
    finally:
        for sub in subs:
            await sub.aclose()
        await client.aclose()
    received = sum(t.received for t in tallies)
    seconds = max((t.last for t in tallies if t.received), default=math.nan) - start
    return {"subscribers": plan.clients, "connections": "one per subscriber",
            "messages_per_channel": plan.messages, "frame_bytes": len(FRAME),
            "received": received, "lost": plan.clients * plan.messages - received,
            "seconds": round(seconds, 3), "messages_per_s": round(received / seconds),
            "cpu_s": cpu}


def relay_figures(traces: Sequence[Trace], failures: Counter[str], start: float,
                  cpu: dict[str, float]) -> dict[str, Any]:
    """Tokens are the jobs' `usage.output_tokens`; the window ends at the last `done`."""
    tokens = sum(int(t.job["usage"]["output_tokens"]) for t in traces if t.intact())
    events = sum(t.token_events for t in traces)
    seconds = max((t.done for t in traces if t.job), default=math.nan) - start
    server_cpu = sum(v for name, v in cpu.items() if name != "client")
    firsts = [t.first_token for t in traces if t.token_events]
    return {
        "clients": len(traces) + failures.total(), "tokens": tokens, "token_events": events,
        "seconds": round(seconds, 3),
        "first_tokens_spread_over_s": round(max(firsts, default=0) - min(firsts, default=0), 3),
        "stream_first_token_to_done": spread([t.done - t.first_token for t in traces]),
        "tokens_per_s": round(tokens / seconds) if tokens else 0,
        "token_events_per_s": round(events / seconds) if events else 0,
        "streams_lost_or_mismatched": sum(not t.intact() for t in traces) + failures.total(),
        "defects": defects(traces, failures),
        "cpu_s": cpu,
        "server_cpu_us_per_token": round(1e6 * server_cpu / tokens, 2) if tokens else math.nan,
    }


async def relay_live(stack: Stack, clients: int, reply_tokens: int) -> dict[str, Any]:
    """N jobs streaming fast, each followed by its own SSE client from its submission."""
    stack.sim.configure(**RELAY_SIM, reply_tokens=reply_tokens)
    async with sidecar_clients(stack.api.url, clients) as users:
        meter = stack.meter()
        subs, failures = await settle(
            submit_and_follow(http, reply_tokens + 100) for http in users
        )
        cpu = meter.used()
    traces = [s.trace for s in subs]
    start = min((t.first_token for t in traces if t.token_events), default=math.nan)
    figures = relay_figures(traces, failures, start, cpu)
    attached = sum(t.opened < iso_seconds(t.job["first_token_at"]) for t in traces if t.intact())
    return {"reply_tokens": reply_tokens, **figures, "clients_attached_before_first_token":
            attached, "job_ids": [t.job["id"] for t in traces if t.intact()]}


async def relay_replay(stack: Stack, job_ids: list[str]) -> dict[str, Any]:
    """The same, finished jobs read from the start by N clients at once."""
    async with sidecar_clients(stack.api.url, len(job_ids)) as users:
        meter = stack.meter()
        start = time.time()
        traces, failures = await settle(
            follow(http, job_id) for http, job_id in zip(users, job_ids, strict=True)
        )
        return relay_figures(traces, failures, start, meter.used())


async def measure_relay(stack: Stack, plan: Plan) -> dict[str, Any]:
    baseline = await pubsub_baseline(stack, plan)
    await stack.quiesce()
    live = await relay_live(stack, plan.clients, plan.reply_tokens)
    await stack.quiesce()
    replay = await relay_replay(stack, live.pop("job_ids"))
    await stack.quiesce()
    long = await relay_live(stack, plan.clients, LONG_REPLY)
    long.pop("job_ids")
    return {"pubsub_baseline": baseline, "live": live, "replay": replay, "live_long": long,
            "simulator": RELAY_SIM}
