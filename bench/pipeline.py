"""Benchmark: what Sidecar's pipeline adds on top of its building blocks.

The machine is small and noisy, so every figure is set against a baseline measured in the same
run, on the same processes:

1. Submit → worker start: `POST /api/jobs` to the job's recorded `started_at`, against a no-op
   Celery task's send → start on the identical Celery config (`bench/noop_app.py`).
2. Added time to first token: `POST` → first SSE `token` event, against streaming straight from
   the simulator with the anthropic SDK; one stream at a time, then N streams at once.
3. Token relay to 100 SSE clients (live, then replaying the finished jobs) against raw Redis
   pub/sub, every client's text checked against its job's result, with the CPU each process
   spent.

    python -m bench.pipeline [--quick] [--streams 200]

Starts its own redis-server, simulator, Sidecar worker, no-op worker and API, and stops them at
the end. Prints a table and writes the figures to bench/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import ssl
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import httpx
import redis
import uvloop
from celery import Celery
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import PubSub

from bench.noop_app import NOOP, QUEUE, started_key
from shared import models
from shared.celery_app import create_celery
from shared.settings import load_settings
from sidecar.sse import Event, aparse_lines, parse_lines
from tests.procs import RedisServer, free_port, wait_until
from tests.simulator_fixtures import SimProcess, start_simulator
from tests.stack import Proc, _spawn, service_env, start_api, start_worker

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "pipeline.json"
MODEL = models.resolve("sonnet")
PROMPT = "What is the rainfall outlook for the Canterbury plains?"
WORKER_CONCURRENCY = 300
WARMUP = 10
# Between rounds, wait until the worker and API are idle (a round's tail of acks, metrics and
# cache writes outlives its clients) so one round does not slow the next.
IDLE_LOOK = 0.3  # seconds
IDLE_CPU_SHARE = 0.1  # of one core, over IDLE_LOOK
IDLE_WAIT_MAX = 5.0  # seconds
TTFT_SIM = {"ttft_ms": 200, "tokens_per_second": 200, "reply_tokens": 20}
# Section 3's simulator: fast streams, and a first token late enough that every SSE client is
# attached before its job streams (so "live" is live, not a replay of a finished job).
RELAY_SIM = {"ttft_ms": 1500, "tokens_per_second": 2000}
LONG_REPLY = 2000  # tokens: long enough that the 100 streams overlap despite their spread starts
# A token frame as the worker stores and publishes it: the pub/sub baseline's message.
FRAME = b'id: 42\nevent: token\ndata: {"text":" rainfall"}\n\n'
# One TLS context for every client: building one per httpx client costs ~35 ms of CPU.
SSL_CONTEXT = ssl.create_default_context()


T = TypeVar("T")


def log(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")


def describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} {exc.request.method} {exc.request.url.path}"
    return type(exc).__name__


async def settle(aws: Iterable[Awaitable[T]]) -> tuple[list[T], Counter[str]]:
    """Run all at once; what succeeded, and the failures counted by kind."""
    outcomes = await asyncio.gather(*aws, return_exceptions=True)
    failures = Counter(describe(o) for o in outcomes if isinstance(o, BaseException))
    return [o for o in outcomes if not isinstance(o, BaseException)], failures


# --- plan and statistics -------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    streams: int  # section 2: concurrent streams
    sequential: int  # section 1: sequential submissions per mode
    singles: int  # section 2: one-stream samples per mode
    rounds: int  # section 2: N-stream bursts per mode
    clients: int = 100  # section 3: SSE clients / pub/sub subscribers
    reply_tokens: int = 500  # section 3: tokens per job (then LONG_REPLY in a second round)
    messages: int = 500  # section 3 baseline: messages per channel


def make_plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(streams=args.streams, sequential=50, singles=10, rounds=1)
    return Plan(streams=args.streams, sequential=200, singles=30, rounds=3)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread(seconds: Sequence[float]) -> dict[str, float]:
    """Sample count, p50, p99 and max, in milliseconds."""
    ms = [1000 * s for s in seconds if not math.isnan(s)]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(percentile(ms, 100), 2),
    }


def iso_seconds(value: str) -> float:
    """An API timestamp (`2025-01-01T00:00:00.123Z`) as Unix seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# --- processes ------------------------------------------------------------------------------


@dataclass
class Stack:
    redis: RedisServer
    sim: SimProcess
    worker: Proc
    noop: Proc
    api: Proc

    def pids(self) -> dict[str, int]:
        assert self.redis.proc is not None
        return {"worker": self.worker.proc.pid, "api": self.api.proc.pid,
                "simulator": self.sim.pid, "redis": self.redis.proc.pid}


def start_noop_worker(env: dict[str, str]) -> Proc:
    """The baseline's worker: `start_worker`'s command line, on the no-op app and its queue."""
    argv = [sys.executable, "-m", "celery", "-A", "bench.noop_app", "worker", "-l", "info",
            "-n", f"noop-{free_port()}@%h", "-c", str(WORKER_CONCURRENCY), "--without-gossip",
            "--without-mingle", "-Q", QUEUE]
    proc, output = _spawn("noop", argv, env)
    worker = Proc("noop", proc, output)
    wait_until(lambda: "ready." in worker.output() or proc.poll() is not None, 30, "noop ready")
    if proc.poll() is not None:
        raise RuntimeError(f"no-op worker exited:\n{worker.output()[-3000:]}")
    return worker


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    with contextlib.ExitStack() as stops:
        server = RedisServer().start()
        stops.callback(server.stop)
        sim = start_simulator(log_level="WARNING")
        stops.callback(sim.stop)
        env = service_env(
            server.url, sim.url, WORKER_CONCURRENCY=str(WORKER_CONCURRENCY),
            JOB_LEASE_SECONDS="20",  # the product default (the tests' 4 s renews 5x as often)
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        )
        worker = start_worker(env, "bench", concurrency=WORKER_CONCURRENCY)
        stops.callback(worker.stop)
        noop = start_noop_worker(env)
        stops.callback(noop.stop)
        api = start_api(env)
        stops.callback(api.stop)
        yield Stack(server, sim, worker, noop, api)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def quiesce(stack: Stack) -> None:
    """Return once the worker and the API use under IDLE_CPU_SHARE of a core (or after
    IDLE_WAIT_MAX seconds, on a machine too busy to tell)."""
    pids = [stack.worker.proc.pid, stack.api.proc.pid]
    deadline = time.monotonic() + IDLE_WAIT_MAX
    while time.monotonic() < deadline:
        before = sum(cpu_seconds(pid) for pid in pids)
        await asyncio.sleep(IDLE_LOOK)
        if sum(cpu_seconds(pid) for pid in pids) - before < IDLE_LOOK * IDLE_CPU_SHARE:
            return


class CpuMeter:
    """CPU seconds each process (and this bench's own client side) used since creation."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        now = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return {**now, "client": time.process_time()}

    def used(self) -> dict[str, float]:
        now = self._read()
        return {name: round(now[name] - self.start[name], 3) for name in now}


# --- section 1: submit → worker start -------------------------------------------------------


def job_body(max_tokens: int) -> dict[str, Any]:
    """A chat job with a message of its own: identical requests would be answered from
    Sidecar's response cache, or follow the one job already answering them."""
    message = f"{PROMPT} (request {secrets.token_hex(6)})"
    return {"type": "chat", "input": {"message": message}, "max_tokens": max_tokens,
            "priority": "interactive"}


def bare_start(sender: Celery, store: redis.Redis) -> float:
    """Send the no-op task and wait until it notes its start; seconds from send to start."""
    token = secrets.token_hex(8)
    sent = time.time()
    sender.send_task(NOOP, args=[token], queue=QUEUE)
    popped = store.blpop([started_key(token)], timeout=10)
    if popped is None:
        raise TimeoutError("the no-op task did not start within 10 s")
    return float(popped[1]) - sent


def follow_sync(http: httpx.Client, job_id: str) -> dict[str, Any]:
    with http.stream("GET", f"/api/jobs/{job_id}/events") as response:
        for event in parse_lines(response.iter_lines()):
            if event.event == "done":
                return dict(event.data)
    raise RuntimeError(f"the stream of job {job_id} ended without `done`")


def sidecar_start(http: httpx.Client) -> tuple[float, float]:
    """POST a job and follow it to its end; seconds from just before the POST to the job's
    `started_at`, and to the POST's answer."""
    sent = time.time()
    response = http.post("/api/jobs", json=job_body(2))
    response.raise_for_status()
    accepted = time.time()
    job = follow_sync(http, response.json()["id"])
    # `started_at` is truncated to whole milliseconds: half a millisecond makes it unbiased.
    return iso_seconds(job["started_at"]) + 0.0005 - sent, accepted - sent


def measure_submit(stack: Stack, plan: Plan) -> dict[str, Any]:
    """Alternate one bare send and one Sidecar submission, so drift hits both alike."""
    stack.sim.configure(ttft_ms=1, tokens_per_second=1000, reply_tokens=2)
    sender = create_celery(load_settings(redis_url=stack.redis.url))
    store = redis.Redis.from_url(stack.redis.url)
    bare: list[float] = []
    ours: list[tuple[float, float]] = []
    try:
        with httpx.Client(base_url=stack.api.url, timeout=30) as http:
            for index in range(WARMUP + plan.sequential):
                pair = bare_start(sender, store), sidecar_start(http)
                if index >= WARMUP:
                    bare.append(pair[0])
                    ours.append(pair[1])
    finally:
        sender.close()
        store.close()
    base, side = spread(bare), spread([started for started, _ in ours])
    return {"bare_celery": base, "sidecar": side,
            "sidecar_post_roundtrip": spread([answered for _, answered in ours]),
            "ratio_p50": round(side["p50_ms"] / base["p50_ms"], 2),
            "ratio_p99": round(side["p99_ms"] / base["p99_ms"], 2)}


# --- SSE client -----------------------------------------------------------------------------


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


async def follow(http: httpx.AsyncClient, job_id: str) -> Trace:
    trace = Trace(opened=time.time())
    async with http.stream("GET", f"/api/jobs/{job_id}/events") as response:
        response.raise_for_status()
        async for event in aparse_lines(response.aiter_lines()):
            trace.see(event)
            if event.event == "done":
                break
    return trace


@dataclass
class Submission:
    sent: float  # just before the POST
    accepted: float  # the 202 arrived
    trace: Trace


async def submit_and_follow(http: httpx.AsyncClient, max_tokens: int) -> Submission:
    sent = time.time()
    response = await http.post("/api/jobs", json=job_body(max_tokens))
    response.raise_for_status()
    accepted = time.time()
    return Submission(sent, accepted, await follow(http, response.json()["id"]))


@contextlib.asynccontextmanager
async def sidecar_clients(url: str, count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client (and so one connection) per user, as browsers would have. A shared client
    does not scale here: httpcore's pool scans every connection on every request event, which
    at 200 streams cost the bench ~5 CPU-s per round and made it the bottleneck."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(httpx.AsyncClient(
                base_url=url, trust_env=False, timeout=httpx.Timeout(30, read=120),
                transport=httpx.AsyncHTTPTransport(verify=SSL_CONTEXT),
            ))
            for _ in range(count)
        ]


@contextlib.asynccontextmanager
async def direct_client(url: str, connections: int) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """An SDK client built as the worker builds its own: one, with a connection per stream."""
    limits = type(anthropic.DEFAULT_CONNECTION_LIMITS)(
        max_connections=connections, max_keepalive_connections=connections
    )
    async with anthropic.AsyncAnthropic(
        base_url=url, api_key="k", max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(limits=limits),
    ) as client:
        yield client


# --- section 2: time to first token ---------------------------------------------------------


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


async def ttft_round(stack: Stack, streams: int, samples: TtftSamples) -> None:
    """One burst of `streams` in each mode, all fired at once, on fresh connections."""
    tokens = TTFT_SIM["reply_tokens"]
    async with direct_client(stack.sim.url, streams) as direct:
        meter = CpuMeter(stack.pids())
        firsts, failed = await settle(direct_ttft(direct, tokens) for _ in range(streams))
        samples.cpu["direct"].update(meter.used())
    samples.direct += firsts
    samples.direct_failures.update(failed)
    await quiesce(stack)
    async with sidecar_clients(stack.api.url, streams) as users:
        meter = CpuMeter(stack.pids())
        subs, failed = await settle(submit_and_follow(http, tokens) for http in users)
        samples.cpu["sidecar"].update(meter.used())
    samples.sidecar += subs
    samples.sidecar_failures.update(failed)
    await quiesce(stack)


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


# --- section 3: token relay -----------------------------------------------------------------


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
        meter = CpuMeter({"redis": stack.pids()["redis"]})
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
        meter = CpuMeter(stack.pids())
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
        meter = CpuMeter(stack.pids())
        start = time.time()
        traces, failures = await settle(
            follow(http, job_id) for http, job_id in zip(users, job_ids, strict=True)
        )
        return relay_figures(traces, failures, start, meter.used())


async def measure_relay(stack: Stack, plan: Plan) -> dict[str, Any]:
    baseline = await pubsub_baseline(stack, plan)
    await quiesce(stack)
    live = await relay_live(stack, plan.clients, plan.reply_tokens)
    await quiesce(stack)
    replay = await relay_replay(stack, live.pop("job_ids"))
    await quiesce(stack)
    long = await relay_live(stack, plan.clients, LONG_REPLY)
    long.pop("job_ids")
    return {"pubsub_baseline": baseline, "live": live, "replay": replay, "live_long": long,
            "simulator": RELAY_SIM}


async def measure_async(stack: Stack, plan: Plan) -> dict[str, Any]:
    log(f"section 2: time to first token (1 and {plan.streams} streams)")
    ttft = await measure_ttft(stack, plan)
    log(f"section 3: relay to {plan.clients} SSE clients")
    relay = await measure_relay(stack, plan)
    return {"ttft": ttft, "relay": relay}


# --- report ---------------------------------------------------------------------------------

Row = tuple[str, str, str, str, str, str]


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def submit_rows(figures: dict[str, Any]) -> list[Row]:
    base, side = figures["bare_celery"], figures["sidecar"]
    return [
        ("1. submit→start p50 (ms)", f"{base['p50_ms']:.2f}", f"{side['p50_ms']:.2f}",
         f"{figures['ratio_p50']:.2f}x", "≤ 1.5x", verdict(figures["ratio_p50"] <= 1.5)),
        ("1. submit→start p99 (ms)", f"{base['p99_ms']:.2f}", f"{side['p99_ms']:.2f}",
         f"{figures['ratio_p99']:.2f}x", "", ""),
        ("1. of which POST answered p50 (ms)", "",
         f"{figures['sidecar_post_roundtrip']['p50_ms']:.2f}", "", "", ""),
    ]


def ttft_rows(name: str, figures: dict[str, Any], targeted: bool) -> list[Row]:
    rows: list[Row] = []
    failed = sum(figures["defects"].values())
    note = f" ({failed} of {failed + figures['sidecar']['n']} failed)" if failed else ""
    for q, limit in (("p50", 5.0), ("p99", 20.0)):
        added = figures[f"added_{q}_ms"]
        rows.append((
            f"2. TTFT {name} {q} (ms)", f"{figures['direct'][f'{q}_ms']:.1f}",
            f"{figures['sidecar'][f'{q}_ms']:.1f}{note}", f"+{added:.1f} ms",
            f"≤ +{limit:.0f} ms" if targeted else "",
            verdict(added <= limit) if targeted else "",
        ))
    return rows


RELAY_RUNS = (("live", "live"), ("replay", "replay"), ("live_long", "live, long replies"))


def relay_rows(relay: dict[str, Any]) -> list[Row]:
    base = relay["pubsub_baseline"]
    pubsub = f"{base['messages_per_s']:,} msg/s (lost {base['lost']})"
    rows: list[Row] = []
    for key, name in RELAY_RUNS:
        figures = relay[key]
        lost = figures["streams_lost_or_mismatched"]
        ok = figures["tokens_per_s"] >= 50_000 and lost == 0
        rows.append((
            f"3. relay {name}, {figures['clients']} clients", pubsub,
            f"{figures['tokens_per_s']:,} tok/s (lost {lost})",
            f"{figures['tokens_per_s'] / base['messages_per_s']:.2f}x "
            f"({figures['token_events_per_s']:,} ev/s)",
            "≥ 50,000 tok/s, 0 lost", verdict(ok),
        ))
    return rows + [pace_row(relay, key) for key in ("live", "live_long")]


def pace_row(relay: dict[str, Any], key: str) -> Row:
    """How long one stream took to reach its client, against the simulator's own pace."""
    figures = relay[key]
    tokens = figures["reply_tokens"]
    stream = figures["stream_first_token_to_done"]["p50_ms"]
    pace = 1000 * (tokens - 1) / relay["simulator"]["tokens_per_second"]
    return (
        f"3. {tokens}-token stream first token→done p50 (ms)", f"{pace:.0f} (simulator pace)",
        f"{stream:.0f} (first tokens spread over {figures['first_tokens_spread_over_s']:.2f} s)",
        f"{stream / pace:.2f}x", "", "",
    )


def cpu_rows(relay: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for key, name in RELAY_RUNS:
        figures = relay[key]
        used = ", ".join(f"{proc} {sec:.2f}" for proc, sec in figures["cpu_s"].items())
        rows.append((f"3. CPU s, relay {name}", "", used,
                     f"{figures['server_cpu_us_per_token']:.1f} µs/token (servers)", "", ""))
    return rows


def table(results: dict[str, Any]) -> str:
    ttft = results["ttft"]
    rows: list[Row] = [("metric", "baseline", "Sidecar", "Sidecar vs baseline", "target", "")]
    rows += submit_rows(results["submit"])
    rows += ttft_rows("1 stream", ttft["1_stream"], targeted=False)
    streams = results["config"]["streams"]
    rows += ttft_rows(f"{streams} streams", ttft[f"{streams}_streams"], targeted=True)
    rows += relay_rows(results["relay"])
    rows += cpu_rows(results["relay"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "-" * len(max(lines, key=len)))
    return "\n".join(lines)


def legend(results: dict[str, Any]) -> str:
    config = results["config"]
    rate, ttft = RELAY_SIM["tokens_per_second"], RELAY_SIM["ttft_ms"]
    return "\n".join([
        "baselines: 1 = no-op task on the same Celery config, send→start; 2 = anthropic SDK "
        f"straight to the simulator (ttft {TTFT_SIM['ttft_ms']} ms), call→first text_delta; "
        f"3 = raw redis.asyncio pub/sub, {config['clients']} subscribers, each on its own "
        "connection.",
        "tokens = jobs' usage.output_tokens; live window = first token → last done, replay = "
        "start → last done; CPU over each whole round ('client' = this process).",
        f"live replies: {config['reply_tokens']} and {LONG_REPLY} tokens at {rate} tok/s per "
        f"stream, first token after {ttft} ms; a Sidecar token event carries several tokens "
        "(the worker coalesces them for 10 ms).",
        f"samples: {config['sequential']} sequential submissions, {config['singles']} single "
        f"streams, {config['rounds']} x {config['streams']} concurrent streams per mode; "
        f"load average {config['loadavg_1m_at_start']:.1f} at start, "
        f"{config['loadavg_1m_at_end']:.1f} at end.",
    ])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples per figure")
    parser.add_argument("--streams", type=int, default=200, help="concurrent streams (sec. 2)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    plan = make_plan(args)
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    log("starting redis-server, simulator, Sidecar worker, no-op worker and API")
    with running_stack() as stack:
        log(f"section 1: submit→start, {plan.sequential} sequential submissions per mode")
        submit = measure_submit(stack, plan)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            measured = runner.run(measure_async(stack, plan))
    config = {**vars(plan), "quick": args.quick, "cpus": os.cpu_count(),
              "worker_concurrency": WORKER_CONCURRENCY, "loadavg_1m_at_start": load_at_start,
              "loadavg_1m_at_end": os.getloadavg()[0],
              "wall_s": round(time.monotonic() - started, 1)}
    results = {"config": config, "submit": submit, **measured}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(f"{table(results)}\n\n{legend(results)}\nfigures: {RESULTS}\n")


if __name__ == "__main__":
    main()
