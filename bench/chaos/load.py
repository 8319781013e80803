"""The load: chat jobs and drought analyses sent one by one by a few concurrent httpx clients
spread over the run, plus one batch; every job carries a nonce of its own (in its prompt, and
as its idempotency key, so a POST retried after a fault finds the same job)."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.chaos.plan import Plan

SUBMIT_TRIES_SECONDS = 90.0  # how long one job's POST is retried across both APIs
INDICATORS = {"rainfall_mm_30d": 12.5, "soil_moisture_pct": 18, "spi_3m": -1.7,
              "reservoir_pct": 41, "forecast_rain_mm_14d": 6}


def nonce() -> str:
    return "n" + secrets.token_hex(8)


def chat_body(tag: str, max_tokens: int) -> dict[str, Any]:
    return {"type": "chat", "input": {"message": f"How do I protect pasture in a dry spell? "
                                                 f"(request {tag})"},
            "max_tokens": max_tokens, "idempotency_key": tag}


def drought_body(tag: str) -> dict[str, Any]:
    return {"type": "drought_analysis",
            "input": {"region": f"Canterbury Plains {tag}", "audience": "farmer",
                      "indicators": INDICATORS},
            "idempotency_key": tag}


@dataclass
class Submitted:
    job_id: str
    kind: str  # chat | drought_analysis
    nonce: str
    batch: bool = False


@dataclass
class Load:
    """What the clients sent and what came back."""

    submitted: list[Submitted] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)  # final failures by reason
    retries: Counter[str] = field(default_factory=Counter)  # POSTs tried again, by reason
    batch_id: str | None = None


def describe(exc: BaseException | httpx.Response) -> str:
    if isinstance(exc, httpx.Response):
        try:
            kind = exc.json()["error"]["type"]
        except (ValueError, KeyError, TypeError):
            kind = ""
        return f"HTTP {exc.status_code} {kind}".strip()
    return type(exc).__name__


async def post_job(client: httpx.AsyncClient, apis: list[str], body: dict[str, Any],
                   load: Load) -> str | None:
    """POST until an API accepts it (answers the job id), trying both APIs in turn."""
    deadline = time.monotonic() + SUBMIT_TRIES_SECONDS
    turn = random.randrange(len(apis))
    reason = ""
    while time.monotonic() < deadline:
        turn += 1
        try:
            response = await client.post(f"{apis[turn % len(apis)]}/api/jobs", json=body)
            if response.status_code in (200, 202):
                return str(response.json()["id"])
            reason = describe(response)
            if response.status_code < 500 and response.status_code != 429:
                break  # the body itself was refused: no retry will help
        except httpx.HTTPError as exc:
            reason = describe(exc)
        load.retries[reason] += 1
        await asyncio.sleep(0.5)
    load.refused[reason or "timeout"] += 1
    return None


async def submit_singles(plan: Plan, apis: list[str], load: Load,
                         on_submitted: Callable[[Submitted], None]) -> None:
    """Send the single jobs at an even pace over `plan.seconds` from `plan.submitters`
    clients."""
    rng = random.Random(plan.seed)
    kinds = ["drought_analysis" if rng.random() < plan.drought_share else "chat"
             for _ in range(plan.single_jobs)]
    queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
    start = time.monotonic()
    for index, kind in enumerate(kinds):
        queue.put_nowait((start + index * plan.seconds / max(1, len(kinds)), kind))

    async def client_loop() -> None:
        timeout = httpx.Timeout(30.0, connect=5.0)
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            while not queue.empty():
                due, kind = queue.get_nowait()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                tag = nonce()
                body = (drought_body(tag) if kind == "drought_analysis"
                        else chat_body(tag, plan.chat_max_tokens))
                job_id = await post_job(client, apis, body, load)
                if job_id is not None:
                    record = Submitted(job_id, kind, tag)
                    load.submitted.append(record)
                    on_submitted(record)

    await asyncio.gather(*(client_loop() for _ in range(plan.submitters)))


async def submit_batch(plan: Plan, apis: list[str], load: Load) -> list[str]:
    """One batch (mode queue) of drought analyses; its nonces. The POST is retried only when
    no API took the connection (a retried batch would be a second batch)."""
    tags = [nonce() for _ in range(plan.batch_jobs)]
    body = {"name": "chaos", "mode": "queue",
            "jobs": [{k: v for k, v in drought_body(t).items() if k != "idempotency_key"}
                     for t in tags]}
    async with httpx.AsyncClient(timeout=60.0, trust_env=False) as client:
        for attempt in range(20):
            try:
                response = await client.post(f"{apis[attempt % len(apis)]}/api/batches",
                                             json=body)
            except httpx.ConnectError as exc:
                load.retries[describe(exc)] += 1
                await asyncio.sleep(1.0)
                continue
            except httpx.HTTPError as exc:
                load.refused[f"batch: {describe(exc)}"] += len(tags)
                return tags
            if response.status_code == 202:
                load.batch_id = str(response.json()["id"])
            else:
                load.refused[f"batch: {describe(response)}"] += len(tags)
            return tags
    load.refused["batch: no API reachable"] += len(tags)
    return tags
