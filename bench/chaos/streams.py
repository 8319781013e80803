"""Clients that follow a job over SSE, hang up mid-stream on purpose (and whenever an API or
Redis goes away), and resume with `Last-Event-ID` — on the other API each time — rebuilding the
text from `token` and `reset` events, to compare with the job's final `result.text`."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.chaos.rules import rebuild_text
from sidecar.sse import Parser

FOLLOW_SECONDS = 600.0  # a follower gives up after this long
RESUME_PAUSE = (0.05, 1.0)  # seconds a client stays away before resuming


@dataclass
class StreamTrace:
    """What one client saw of one job, across all its connections."""

    job_id: str
    kind: str
    events: list[tuple[str, Any]] = field(default_factory=list)
    last_id: int = 0
    connections: int = 0
    planned_cuts: int = 0  # hang-ups by the client itself
    broken: Counter[str] = field(default_factory=Counter)  # connections that failed, by why
    replayed_ids: int = 0  # events whose id was not above the Last-Event-ID sent
    job: dict[str, Any] | None = None  # the `done` event's data

    @property
    def text(self) -> str:
        return rebuild_text(self.events)

    def outcome(self) -> str:
        """'' when the client holds exactly the job's text; else what went wrong."""
        if self.job is None:
            return "no done event"
        if self.job.get("status") != "succeeded":
            return ""  # nothing to compare: the job failed (counted by the audit)
        expected = (self.job.get("result") or {}).get("text") or ""
        return "" if self.text == expected else "text differs from result.text"


async def _read(client: httpx.AsyncClient, url: str, trace: StreamTrace,
                cut_after: int | None) -> bool:
    """One connection; True once `done` arrived. Hangs up after `cut_after` tokens."""
    headers = {"Last-Event-ID": str(trace.last_id)} if trace.last_id else {}
    parser, tokens = Parser(), 0
    trace.connections += 1
    async with client.stream("GET", f"{url}/api/jobs/{trace.job_id}/events",
                             headers=headers) as response:
        if response.status_code != 200:
            trace.broken[f"HTTP {response.status_code}"] += 1
            return False
        async for line in response.aiter_lines():
            event = parser.feed(line)
            if event is None:
                continue
            if event.id and event.id <= trace.last_id:
                trace.replayed_ids += 1
                continue
            trace.last_id = event.id or trace.last_id
            if event.event == "done":
                trace.job = event.data
                return True
            if event.event == "error":
                trace.broken["error event"] += 1
                return False
            trace.events.append((event.event, event.data))
            tokens += event.event == "token"
            if cut_after is not None and tokens >= cut_after:
                trace.planned_cuts += 1
                return False
    trace.broken["closed before done"] += 1
    return False


async def follow(client: httpx.AsyncClient, apis: list[str], trace: StreamTrace,
                 rng: random.Random) -> StreamTrace:
    """Follow a job to its `done`, cutting the first one or two connections short."""
    cuts = [rng.randint(1, 15) for _ in range(rng.choice((1, 1, 2)))]
    turn = rng.randrange(len(apis))
    deadline = time.monotonic() + FOLLOW_SECONDS
    while time.monotonic() < deadline:
        try:
            if await _read(client, apis[turn % len(apis)], trace, cuts.pop(0) if cuts else None):
                return trace
        except httpx.HTTPError as exc:
            trace.broken[type(exc).__name__] += 1
        turn += 1
        await asyncio.sleep(rng.uniform(*RESUME_PAUSE))
    return trace


class Followers:
    """Starts followers as jobs are submitted; at most `limit` connections at once."""

    def __init__(self, apis: list[str], share: float, seed: int, limit: int = 150) -> None:
        self.apis = apis
        self.share = share
        self.rng = random.Random(seed)
        self.gate = asyncio.Semaphore(limit)
        self.traces: list[StreamTrace] = []
        self.tasks: list[asyncio.Task[StreamTrace]] = []
        timeout = httpx.Timeout(60.0, connect=5.0)
        limits = httpx.Limits(max_connections=limit + 10, max_keepalive_connections=limit)
        self.client = httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False)

    def maybe_follow(self, job_id: str, kind: str) -> None:
        if self.rng.random() < self.share:
            self.traces.append(StreamTrace(job_id, kind))
            self.tasks.append(asyncio.create_task(self._gated(self.traces[-1])))

    async def _gated(self, trace: StreamTrace) -> StreamTrace:
        async with self.gate:
            return await follow(self.client, self.apis, trace, random.Random(self.rng.random()))

    async def results(self, grace: float) -> list[StreamTrace]:
        """Every trace, once its follower is done or `grace` seconds have passed (a follower
        still waiting then is stopped: its trace has no `done`)."""
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.client.aclose()
        return self.traces
