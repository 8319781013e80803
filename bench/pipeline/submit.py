"""Section 1 of `bench.pipeline`: submit → worker start, against a no-op Celery task's
send → start on the same Celery config.

The submissions are posted with the standard library's `http.client` on one kept-alive
connection: 184 µs of client CPU per POST here, against 276 µs for the baseline's
`send_task` and 526 µs for httpx, whose cost would otherwise be counted as Sidecar's."""

from __future__ import annotations

import json
import secrets
import time
from http.client import HTTPConnection
from typing import Any

import redis
from celery import Celery

from bench.common.stats import iso_seconds, spread
from bench.noop_app import NOOP, QUEUE, started_key
from bench.pipeline.clients import job_body
from bench.pipeline.plan import WARMUP, Plan
from bench.pipeline.stack import Stack
from shared.celery_app import create_celery
from shared.settings import load_settings
from sidecar.sse import parse_lines


def bare_start(sender: Celery, store: redis.Redis) -> float:
    """Send the no-op task and wait until it notes its start; seconds from send to start."""
    token = secrets.token_hex(8)
    sent = time.time()
    sender.send_task(NOOP, args=[token], queue=QUEUE)
    return started_at(store, token) - sent


def started_at(store: redis.Redis, token: str, timeout: float = 30) -> float:
    """When the no-op task sent with `token` started (it notes the time under its token)."""
    popped = store.blpop([started_key(token)], timeout=timeout)
    if popped is None:
        raise TimeoutError(f"the no-op task did not start within {timeout} s")
    return float(popped[1])


def bare_burst(redis_url: str, count: int) -> list[float]:
    """`count` no-op tasks sent back to back, then each one's send→start in seconds: how long
    Celery alone takes to take in a burst."""
    sender = create_celery(load_settings(redis_url=redis_url))
    store = redis.Redis.from_url(redis_url)
    try:
        sent = []
        for _ in range(count):
            token = secrets.token_hex(8)
            sent.append((token, time.time()))
            sender.send_task(NOOP, args=[token], queue=QUEUE)
        return [started_at(store, token) - at for token, at in sent]
    finally:
        sender.close()
        store.close()


def follow_sync(http: HTTPConnection, job_id: str) -> dict[str, Any]:
    """The job's final JSON; the body is read to its end, so the connection is kept for the
    next POST (as the baseline's broker connection is)."""
    http.request("GET", f"/api/jobs/{job_id}/events")
    response = http.getresponse()
    body = response.read().decode()
    if response.status != 200:
        raise RuntimeError(f"GET events of job {job_id}: HTTP {response.status} {body[:200]}")
    final = [dict(e.data) for e in parse_lines(iter(body.splitlines())) if e.event == "done"]
    if not final:
        raise RuntimeError(f"the stream of job {job_id} ended without `done`")
    return final[0]


def sidecar_start(http: HTTPConnection) -> tuple[float, float]:
    """POST a job and follow it to its end; seconds from just before the POST to the job's
    `started_at`, and to the POST's answer."""
    sent = time.time()
    http.request("POST", "/api/jobs", body=json.dumps(job_body(2)),
                 headers={"Content-Type": "application/json"})
    response = http.getresponse()
    answer = response.read()
    accepted = time.time()
    if response.status != 202:
        raise RuntimeError(f"POST /api/jobs: HTTP {response.status} {answer[:200]!r}")
    job = follow_sync(http, json.loads(answer)["id"])
    # `started_at` is truncated to whole milliseconds: half a millisecond makes it unbiased.
    return iso_seconds(job["started_at"]) + 0.0005 - sent, accepted - sent


def measure_submit(stack: Stack, plan: Plan) -> dict[str, Any]:
    """Alternate one bare send and one Sidecar submission, so drift hits both alike."""
    stack.sim.configure(ttft_ms=1, tokens_per_second=1000, reply_tokens=2)
    sender = create_celery(load_settings(redis_url=stack.redis.url))
    store = redis.Redis.from_url(stack.redis.url)
    bare: list[float] = []
    ours: list[tuple[float, float]] = []
    host, port = stack.api.url.removeprefix("http://").split(":")
    http = HTTPConnection(host, int(port), timeout=30)
    try:
        for index in range(WARMUP + plan.sequential):
            pair = bare_start(sender, store), sidecar_start(http)
            if index >= WARMUP:
                bare.append(pair[0])
                ours.append(pair[1])
    finally:
        http.close()
        sender.close()
        store.close()
    base, side = spread(bare), spread([started for started, _ in ours])
    return {"bare_celery": base, "sidecar": side,
            "sidecar_post_roundtrip": spread([answered for _, answered in ours]),
            "ratio_p50": round(side["p50_ms"] / base["p50_ms"], 2),
            "ratio_p99": round(side["p99_ms"] / base["p99_ms"], 2)}
