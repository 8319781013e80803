"""The bench's users: Sidecar SSE clients that submit and follow jobs, and what each one saw.

They read on aiohttp, the HTTP stack the direct baseline's SDK client reads on (its aiohttp
transport), so the time Sidecar adds is not one client library's parser against another's:
with httpx's pure-Python HTTP/1.1 parser the users spent 1.6-1.8x the CPU of the baseline's for
the same streams, on the same two cores as the servers."""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from bench.pipeline.plan import PROMPT
from sidecar.sse import Event, Parser

T = TypeVar("T")


def describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status} {exc.request_info.method} {exc.request_info.url.path}"
    return type(exc).__name__


async def settle(aws: Iterable[Awaitable[T]]) -> tuple[list[T], Counter[str]]:
    """Run all at once; what succeeded, and the failures counted by kind."""
    outcomes = await asyncio.gather(*aws, return_exceptions=True)
    failures = Counter(describe(o) for o in outcomes if isinstance(o, BaseException))
    return [o for o in outcomes if not isinstance(o, BaseException)], failures


def job_body(max_tokens: int) -> dict[str, Any]:
    """A chat job with a message of its own: identical requests would be answered from
    Sidecar's response cache, or follow the one job already answering them."""
    message = f"{PROMPT} (request {secrets.token_hex(6)})"
    return {"type": "chat", "input": {"message": message}, "max_tokens": max_tokens,
            "priority": "interactive"}


@dataclass
class Trace:
    """What one SSE client saw of one job (wall-clock times)."""

    opened: float
    first_token: float = math.nan
    done: float = math.nan
    token_events: int = 0
    text: list[str] = field(default_factory=list)
    job: dict[str, Any] = field(default_factory=dict)

    def see(self, event: Event) -> None:
        if event.event == "token":
            if not self.token_events:
                self.first_token = time.time()
            self.token_events += 1
            self.text.append(event.data["text"])
        elif event.event == "reset":
            self.text.clear()
        elif event.event == "done":
            self.done = time.time()
            self.job = event.data

    def intact(self) -> bool:
        """The job succeeded and the client holds exactly its text."""
        return not self.defect()

    def defect(self) -> str:
        """What went wrong for this client ('' when nothing did)."""
        status = self.job.get("status")
        if status != "succeeded":
            return f"job {status}: {(self.job.get('error') or {}).get('type')}"
        result = self.job.get("result") or {}
        return "" if "".join(self.text) == result.get("text") else "text differs from result"


def defects(traces: Iterable[Trace], failures: Counter[str]) -> dict[str, int]:
    """Streams that failed outright or ended with a failed job or a different text, by kind."""
    found = Counter(t.defect() for t in traces)
    del found[""]
    return dict(found + failures)


async def follow(http: aiohttp.ClientSession, job_id: str) -> Trace:
    trace = Trace(opened=time.time())
    parser = Parser()
    async with http.get(f"/api/jobs/{job_id}/events") as response:
        response.raise_for_status()
        # Read on past `done` to the end of the body (the API ends it there), so that the
        # connection goes back to the pool for the user's next POST, as a browser's would.
        async for line in response.content:
            if (event := parser.feed(line.decode().rstrip("\n"))) is not None:
                trace.see(event)
    return trace


@dataclass
class Submission:
    sent: float  # just before the POST
    accepted: float  # the 202 arrived
    trace: Trace


async def submit_and_follow(http: aiohttp.ClientSession, max_tokens: int) -> Submission:
    sent = time.time()
    async with http.post("/api/jobs", json=job_body(max_tokens)) as response:
        response.raise_for_status()
        job = await response.json()
    accepted = time.time()
    return Submission(sent, accepted, await follow(http, job["id"]))


@contextlib.asynccontextmanager
async def sidecar_clients(url: str, count: int) -> AsyncIterator[list[aiohttp.ClientSession]]:
    """One session (and so one connection) per user, as browsers would have."""
    timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_read=120)
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(aiohttp.ClientSession(
                base_url=url, timeout=timeout, trust_env=False,
                connector=aiohttp.TCPConnector(limit=1),
            ))
            for _ in range(count)
        ]
