"""Benchmark: Sidecar's shared rate limiter, and how many streams one worker process holds.

The machine is small and noisy, so every figure is set against a baseline measured in the same
run, on the same machine.

Part A — limiter on vs off. The simulator enforces Anthropic's low tier (50 RPM, 30 000 ITPM,
8 000 OTPM) multiplied by a scale K, as continuously refilling buckets. Four workers (all four
on `-Q interactive,batch`, `-c 50` each) and one API run N chat jobs: 80 % batch
(max_tokens 200) submitted at once, 20 % interactive (max_tokens 100) trickled in evenly over
the run's expected length. Every reply is as long as its max_tokens allows, so a reservation is
what the call really uses. The baseline is the same run with `LIMITER_ENABLED=false` (the
worker's retries only, which honour retry-after; MAX_RETRIES=10, JOB_MAX_ATTEMPTS=20) on a
fresh Redis database and a reset simulator.

    share of the limit used = used / (limit + limit * window / 60)

for the binding bucket (the one the run needed the most minutes of): the bucket starts full
(one minute's limit) and refills limit/60 per second. `used` is the simulator's own ledger;
`window` runs from the simulator's reset to the last upstream call (after it no job was left
wanting capacity, so refill had no taker). The steady-state share is the ledger's rate between
30 % and 90 % of the window over the refill rate: pacing alone, without the one-off costs
(the initial bucket, the interactive reserve left unspent at the end).

Part B — streams one worker process holds: one worker (`-c 1200`, MAX_IN_FLIGHT=2000, limiter
on) against an unlimited simulator streaming slowly (0.5 token/s, 20 tokens, 200 ms to the
first token: a stream lasts 40 s); N jobs at once. Peak concurrent streams, the worker's RSS
idle vs at peak, memory per stream and CPU per relayed token, against the bare SDK
(`anthropic.AsyncAnthropic` on one uvloop loop in this process, reading the same raw events and
keeping the text) holding as many streams against the same simulator. The worker takes ~20 ms
of CPU per job of 20-30 tokens, so taking 1 100 jobs keeps its one core (the GIL) busy for
20-30 s: streams must outlast that ramp to be held all at once, and at 5 tokens/s (5 500 token
events a second, ~0.4 ms each) the process would run out of CPU before it held 1 000.

    python -m bench.ratelimit [--quick] [--jobs 2000] [--scale K] [--streams 1100] [--only a|b]

Starts its own redis-server, simulators, workers and API, and stops them at the end. Prints a
table and writes the figures to bench/results/ratelimit.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import httpx
import httpx2
import uvloop
from redis.asyncio import Redis

from shared import keys, models
from shared.schemas import FINISHED
from shared.settings import Settings
from tests.procs import RedisServer
from tests.simulator_fixtures import SimProcess, start_simulator
from tests.stack import Proc, service_env, start_api, start_worker

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ratelimit.json"
MODEL = models.resolve("sonnet")
LOW_TIER = {"rpm": 50, "itpm": 30_000, "otpm": 8_000}
BATCH_TOKENS, INTERACTIVE_TOKENS = 200, 100
INTERACTIVE_SHARE = 0.2
WORKERS, SLOTS, QUEUES = 4, 50, "interactive,batch"
STREAM_SLOTS, STREAM_TPS, STREAM_TTFT_MS = 1200, 0.5, 200
SUBMIT_CONCURRENCY = 8  # more costs the API and this client more CPU per request
SAMPLE_EVERY = 0.5
STEADY = (0.3, 0.9)  # share of the window over which the steady-state rate is taken
RESERVE = float(Settings.model_fields["interactive_reserve"].default)
BASELINE_ENV = {"LIMITER_ENABLED": "false", "MAX_RETRIES": "10", "JOB_MAX_ATTEMPTS": "20"}
T = TypeVar("T")
Record = dict[str, str]


def log(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")


# --- plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    jobs: int
    scale: int
    streams: int  # Part B: jobs (and SDK streams) at once
    stream_tokens: int  # Part B: tokens per stream

    @property
    def interactive(self) -> int:
        return round(self.jobs * INTERACTIVE_SHARE)

    @property
    def batch(self) -> int:
        return self.jobs - self.interactive

    @property
    def limits(self) -> dict[str, int]:
        return {name: value * self.scale for name, value in LOW_TIER.items()}

    @property
    def demand(self) -> int:
        """Output tokens the run needs (every reply fills its max_tokens)."""
        return self.batch * BATCH_TOKENS + self.interactive * INTERACTIVE_TOKENS

    @property
    def expected_window(self) -> float:
        """Seconds the limiter run needs: the demand less the part of the initial full OTPM
        bucket that batch may use (not the interactive reserve), at limit/60 per second."""
        return max(5.0, 60 * (self.demand / self.limits["otpm"] - (1 - RESERVE)))

    @property
    def stream_seconds(self) -> float:
        return STREAM_TTFT_MS / 1000 + self.stream_tokens / STREAM_TPS


def make_plan(args: argparse.Namespace) -> Plan:
    quick = args.quick
    plan = Plan(jobs=args.jobs or (300 if quick else 2000), scale=1,
                streams=args.streams or (300 if quick else 1100),
                stream_tokens=6 if quick else 20)
    if args.scale:
        return replace(plan, scale=args.scale)
    # K such that the limiter run lasts about `target` seconds (see expected_window).
    target = 36.0 if quick else 75.0
    otpm = plan.demand / (target / 60 + 1 - RESERVE)
    return replace(plan, scale=max(1, round(otpm / LOW_TIER["otpm"])))


# --- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def iso_seconds(value: str) -> float:
    """An API timestamp (`2025-01-01T00:00:00.123Z`) as Unix seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def elapsed(records: Sequence[Record], priority: str, since: str, until: str) -> list[float]:
    """Seconds from field `since` to field `until` of the jobs of one priority that have both."""
    return [iso_seconds(r[until]) - iso_seconds(r[since]) for r in records
            if r.get("priority") == priority and r.get(since) and r.get(until)]


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0 or math.isnan(value) or math.isnan(base):
        return None
    return round(value / base, 3)


# --- processes and measurements ---------------------------------------------------------------


def bench_env(redis_url: str, sim_url: str, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    # The product's lease (the tests' 4 s renews five times as often).
    return service_env(redis_url, sim_url, JOB_LEASE_SECONDS="20", PYTHONPATH=path, **extra)


def start_workers(stops: contextlib.ExitStack, env: dict[str, str], count: int) -> list[Proc]:
    """Start `count` workers side by side; each is stopped when `stops` closes."""
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(start_worker, env, f"rl{n}", QUEUES, SLOTS) for n in range(count)]
    workers: list[Proc] = []
    for future in futures:
        if future.exception() is None:
            workers.append(future.result())
            stops.callback(workers[-1].stop, 5.0)
    for future in futures:
        future.result()  # re-raise the first failure, the others being stopped already
    return workers


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each role's processes used since the meter was made."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        return {role: sum(cpu_seconds(pid) for pid in pids) for role, pids in self.pids.items()}

    def used(self) -> dict[str, float]:
        now = self._read()
        return {role: round(now[role] - self.start[role], 2) for role in now}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass(frozen=True)
class Sample:
    at: float  # wall clock
    calls: int  # /v1/messages answered, any status
    requests: int  # /v1/messages answered 200 (the RPM bucket's charge)
    input_tokens: int
    output_tokens: int
    open_streams: int
    rss_kib: int

    def ledger(self, bucket: str) -> int:
        return {"rpm": self.requests, "itpm": self.input_tokens,
                "otpm": self.output_tokens}[bucket]


class Sampler(threading.Thread):
    """Reads the simulator's stats (and a process's RSS) every SAMPLE_EVERY seconds on its own
    thread, so a busy event loop does not delay samples; `cpu` is the thread's own CPU time,
    for subtracting from this process's figures."""

    def __init__(self, sim_url: str, pid: int | None = None) -> None:
        super().__init__(name="sampler", daemon=True)
        self.sim_url = sim_url
        self.pid = pid
        self.samples: list[Sample] = []
        self.cpu = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.sim_url, timeout=5) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    self.samples.append(self._sample(http.get("/_sim/stats").json()))
                if self._done.wait(SAMPLE_EVERY):
                    break
        self.cpu = time.thread_time()

    def _sample(self, stats: dict[str, Any]) -> Sample:
        codes = stats["requests"].get("/v1/messages", {})
        return Sample(at=time.time(), calls=sum(codes.values()), requests=codes.get("200", 0),
                      input_tokens=stats["tokens"]["input_tokens"],
                      output_tokens=stats["tokens"]["output_tokens"],
                      open_streams=stats["streams"]["open"],
                      rss_kib=rss_kib(self.pid) if self.pid else 0)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.join(10)


# --- jobs -----------------------------------------------------------------------------------


def job_body(priority: str, max_tokens: int, n: int) -> dict[str, Any]:
    message = f"{priority} question {n}: what is the rainfall outlook for the Canterbury plains?"
    return {"type": "chat", "input": {"message": message}, "max_tokens": max_tokens,
            "priority": priority, "cache": False}


async def submit(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await http.post("/api/jobs", json=body)
    response.raise_for_status()
    return str(response.json()["id"])


async def gated(gate: asyncio.Semaphore, work: Awaitable[T]) -> T:
    async with gate:
        return await work


async def delayed(seconds: float, work: Awaitable[T]) -> T:
    await asyncio.sleep(seconds)
    return await work


def api_client(url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=2 * SUBMIT_CONCURRENCY)
    return httpx.AsyncClient(base_url=url, timeout=60, limits=limits)


async def gather_ids(work: Sequence[Awaitable[str]]) -> tuple[list[str], int]:
    """Job ids of the submissions that were accepted, and how many failed."""
    outcomes = await asyncio.gather(*work, return_exceptions=True)
    ids = [o for o in outcomes if isinstance(o, str)]
    for failure in [o for o in outcomes if isinstance(o, BaseException)][:3]:
        log(f"submission failed: {failure!r}")
    return ids, len(outcomes) - len(ids)


async def submit_mix(url: str, plan: Plan) -> tuple[list[str], int]:
    """The batch at once (bounded concurrency), the interactive jobs trickled in evenly over
    90 % of the run's expected window."""
    gap = 0.9 * plan.expected_window / max(1, plan.interactive)
    async with api_client(url) as http:
        gate = asyncio.Semaphore(SUBMIT_CONCURRENCY)
        batch = [gated(gate, submit(http, job_body("batch", BATCH_TOKENS, n)))
                 for n in range(plan.batch)]
        bodies = [job_body("interactive", INTERACTIVE_TOKENS, n) for n in range(plan.interactive)]
        trickle = [delayed(n * gap, submit(http, body)) for n, body in enumerate(bodies)]
        return await gather_ids([*batch, *trickle])


async def submit_at_once(url: str, count: int, max_tokens: int) -> tuple[list[str], int]:
    async with api_client(url) as http:
        gate = asyncio.Semaphore(SUBMIT_CONCURRENCY)
        bodies = [job_body("interactive", max_tokens, n) for n in range(count)]
        return await gather_ids([gated(gate, submit(http, body)) for body in bodies])


async def wait_finished(store: Redis, ids: Sequence[str], timeout: float) -> int:
    """Poll the job records until every job has finished; how many had not by the timeout."""
    pending = list(ids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        async with store.pipeline(transaction=False) as pipe:
            for job_id in pending:
                pipe.hget(keys.job(job_id), "status")
            statuses = await pipe.execute()
        pending = [j for j, s in zip(pending, statuses, strict=True) if s not in FINISHED]
    if pending:
        log(f"{len(pending)} jobs still unfinished after {timeout:.0f} s")
    return len(pending)


async def fetch_records(store: Redis, ids: Sequence[str]) -> list[Record]:
    async with store.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hgetall(keys.job(job_id))
        return list(await pipe.execute())


async def run_jobs(redis_url: str, ids: Sequence[str], timeout: float) -> list[Record]:
    async with Redis.from_url(redis_url, decode_responses=True) as store:
        await wait_finished(store, ids, timeout)
        return await fetch_records(store, ids)


# --- Part A: limiter on vs off --------------------------------------------------------------


@dataclass
class MixRun:
    mode: str
    started: float
    records: list[Record]
    samples: list[Sample]
    stats: dict[str, Any]
    submit_errors: int
    limiter: dict[str, Any]  # the model's entry of GET /api/limits at the end
    cpu: dict[str, float]  # CPU seconds per role over the run


def limiter_state(api_url: str) -> dict[str, Any]:
    models_state = httpx.get(api_url + "/api/limits", timeout=10).json().get("models", {})
    return dict(models_state.get(MODEL, {}))


@dataclass(frozen=True)
class Mode:
    name: str
    db: int  # each mode on its own Redis database
    env: dict[str, str]


async def run_mix(plan: Plan, sim: SimProcess, server: RedisServer, mode: Mode) -> MixRun:
    redis_url = f"{server.url.rsplit('/', 1)[0]}/{mode.db}"
    env = bench_env(redis_url, sim.url, WORKER_CONCURRENCY=str(SLOTS), **mode.env)
    with contextlib.ExitStack() as stops:
        workers = start_workers(stops, env, WORKERS)
        api = start_api(env)
        stops.callback(api.stop, 5.0)
        assert server.proc is not None
        meter = CpuMeter({"workers": [w.proc.pid for w in workers], "api": [api.proc.pid],
                          "redis": [server.proc.pid], "simulator": [sim.pid]})
        sim.reset(config=True)
        started = time.time()
        log(f"{mode.name}: {plan.batch} batch jobs at once, {plan.interactive} interactive over "
            f"{0.9 * plan.expected_window:.0f} s")
        with Sampler(sim.url) as sampler:
            ids, errors = await submit_mix(api.url, plan)
            records = await run_jobs(redis_url, ids, 3 * plan.expected_window + 120)
        return MixRun(mode.name, started, records, sampler.samples, sim.stats(), errors,
                      limiter_state(api.url), meter.used())


def ledger(stats: dict[str, Any]) -> dict[str, int]:
    """What the simulator charged each bucket over the run."""
    codes = stats["requests"].get("/v1/messages", {})
    return {"rpm": int(codes.get("200", 0)), "itpm": int(stats["tokens"]["input_tokens"]),
            "otpm": int(stats["tokens"]["output_tokens"])}


def demand_window(run: MixRun) -> float:
    """Seconds from the reset to the first sample that saw the run's last upstream call."""
    total = sum(run.stats["requests"].get("/v1/messages", {}).values())
    last = next((s.at for s in run.samples if s.calls >= total), time.time())
    return last - run.started


def steady_rate(run: MixRun, bucket: str, limit: int, window: float) -> float:
    """The bucket's ledger rate (per second) once the initial bucket is spent (the ledger has
    passed one minute's limit and STEADY[0] of the window is over) until STEADY[1] of it."""
    low, high = (run.started + share * window for share in STEADY)
    inside = [s for s in run.samples if low <= s.at <= high and s.ledger(bucket) >= limit]
    if len(inside) < 2 or inside[-1].at <= inside[0].at:
        return math.nan
    return (inside[-1].ledger(bucket) - inside[0].ledger(bucket)) / (inside[-1].at - inside[0].at)


def utilisation(run: MixRun, limits: dict[str, int]) -> dict[str, Any]:
    used = ledger(run.stats)
    bucket = max(limits, key=lambda name: used[name] / limits[name])
    limit, window = limits[bucket], demand_window(run)
    capacity = limit + limit * window / 60
    steady = steady_rate(run, bucket, limit, window) / (limit / 60)
    return {"binding_bucket": bucket, "limit_per_minute": limit, "used": used[bucket],
            "ledger": used, "window_s": round(window, 2), "capacity": round(capacity),
            "utilisation": round(used[bucket] / capacity, 4),
            "steady_utilisation": round(steady, 4)}


def reserve_ceiling(figures: dict[str, Any]) -> float:
    """The best share a limiter run can reach when batch never touches the interactive reserve
    and no interactive job needs it: the reserve is still in the bucket at the end."""
    used, limit = figures["used"], figures["limit_per_minute"]
    return round(used / (used + RESERVE * limit), 4)


def upstream(stats: dict[str, Any], jobs: int) -> dict[str, Any]:
    codes = {k: int(v) for k, v in stats["requests"].get("/v1/messages", {}).items()}
    calls = sum(codes.values())
    return {"upstream_calls": calls, "upstream_by_status": codes,
            "upstream_429": codes.get("429", 0),
            "share_429": round(codes.get("429", 0) / calls, 4) if calls else math.nan,
            "calls_per_job": round(calls / jobs, 3) if jobs else math.nan}


def outcomes(records: Sequence[Record], expected: int) -> dict[str, Any]:
    statuses = Counter(r.get("status", "missing") for r in records)
    errors = Counter(json.loads(r["error"])["type"] for r in records if r.get("error"))
    return {"jobs": expected, "succeeded": statuses["succeeded"],
            "failed": expected - statuses["succeeded"], "statuses": dict(statuses),
            "errors": dict(errors)}


def latencies(records: Sequence[Record]) -> dict[str, float]:
    queue_i = elapsed(records, "interactive", "created_at", "started_at")
    ttft_i = elapsed(records, "interactive", "created_at", "first_token_at")
    queue_b = elapsed(records, "batch", "created_at", "started_at")
    return {"interactive_queue_p50_s": round(percentile(queue_i, 50), 3),
            "interactive_queue_p95_s": round(percentile(queue_i, 95), 3),
            "interactive_ttft_p50_s": round(percentile(ttft_i, 50), 3),
            "interactive_ttft_p95_s": round(percentile(ttft_i, 95), 3),
            "batch_queue_p50_s": round(percentile(queue_b, 50), 3)}


def limiter_counts(run: MixRun) -> dict[str, Any]:
    """How often workers asked the limiter for capacity and were told to wait, and how many
    batch jobs submission took (the API's pace under load)."""
    created = [iso_seconds(r["created_at"]) for r in run.records if r.get("priority") == "batch"]
    return {"limiter_admitted": run.limiter.get("admitted"),
            "limiter_waits": run.limiter.get("waits"),
            "batch_submit_s": round(max(created, default=run.started) - run.started, 2)}


def timeline(run: MixRun, every: float = 2.0) -> list[list[float]]:
    """[seconds since reset, upstream calls, calls answered 200, output tokens], every ~2 s."""
    rows: list[list[float]] = []
    for sample in run.samples:
        at = round(sample.at - run.started, 1)
        if not rows or at - rows[-1][0] >= every:
            rows.append([at, sample.calls, sample.requests, sample.output_tokens])
    return rows


def wall_time(run: MixRun) -> float:
    ends = [iso_seconds(r["finished_at"]) for r in run.records if r.get("finished_at")]
    return round(max(ends, default=time.time()) - run.started, 2)


def mix_figures(run: MixRun, plan: Plan) -> dict[str, Any]:
    shares = utilisation(run, plan.limits)
    if run.limiter:  # the limiter was on (it keeps the reserve)
        shares["ceiling_with_reserve"] = reserve_ceiling(shares)
    return {"mode": run.mode, **shares,
            **upstream(run.stats, len(run.records)), **outcomes(run.records, plan.jobs),
            **latencies(run.records), **limiter_counts(run), "submit_errors": run.submit_errors,
            "cpu_s": run.cpu, "workers_cpu_s": run.cpu["workers"], "redis_cpu_s": run.cpu["redis"],
            "timeline": timeline(run),
            "wall_s": wall_time(run)}


def mix_ratios(limited: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    names = ("share_429", "interactive_queue_p95_s", "interactive_ttft_p95_s", "utilisation",
             "steady_utilisation", "failed", "wall_s")
    return {name: ratio(limited[name], base[name]) for name in names}


async def part_a(plan: Plan, server: RedisServer) -> dict[str, Any]:
    sim = start_simulator(reply_tokens=BATCH_TOKENS, log_level="WARNING", **plan.limits)
    try:
        limited = mix_figures(await run_mix(plan, sim, server, Mode("limiter", 0, {})), plan)
        log(f"limiter: {limited['wall_s']} s, {limited['failed']} failed")
        base = mix_figures(await run_mix(plan, sim, server, Mode("baseline", 1, BASELINE_ENV)),
                           plan)
        log(f"baseline: {base['wall_s']} s, {base['failed']} failed")
    finally:
        sim.stop()
    return {"scale": plan.scale, "limits": plan.limits, "low_tier": LOW_TIER,
            "workers": f"{WORKERS} x -c {SLOTS}, all on -Q {QUEUES}",
            "jobs": {"batch": plan.batch, "batch_max_tokens": BATCH_TOKENS,
                     "interactive": plan.interactive,
                     "interactive_max_tokens": INTERACTIVE_TOKENS,
                     "interactive_spread_s": round(0.9 * plan.expected_window, 1)},
            "expected_window_s": round(plan.expected_window, 1), "baseline_env": BASELINE_ENV,
            "limiter": limited, "baseline": base, "ratios": mix_ratios(limited, base)}


# --- Part B: streams one worker process holds -------------------------------------------------


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


def sdk_client(url: str, streams: int) -> anthropic.AsyncAnthropic:
    limits = httpx2.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    return anthropic.AsyncAnthropic(
        api_key="bench", base_url=url, max_retries=0,
        timeout=anthropic.Timeout(600.0, connect=10.0, read=120.0),
        http_client=anthropic.DefaultAsyncHttpxClient(limits=limits),
    )


async def sdk_holding(plan: Plan, sim: SimProcess) -> Holding:
    """The bare SDK in this process; the sampler thread's CPU is taken off its figure."""
    async with sdk_client(sim.url, plan.streams) as client:
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
        worker = start_worker(env, "streams", QUEUES, STREAM_SLOTS)
        stops.callback(worker.stop, 5.0)
        api = start_api(env)
        stops.callback(api.stop, 5.0)
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


# --- report ---------------------------------------------------------------------------------


def cell(value: Any, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if percent:
        return f"{100 * value:.2f} %"
    return f"{value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"


Row = tuple[str, str, str, str]
A_ROWS = (("share of limit used ({bucket})", "utilisation", True),
          ("  steady-state share", "steady_utilisation", True),
          ("  best possible with the reserve kept", "ceiling_with_reserve", True),
          ("upstream calls answered 429", "share_429", True),
          ("upstream calls", "upstream_calls", False),
          ("jobs failed", "failed", False),
          ("interactive queue p50 (s)", "interactive_queue_p50_s", False),
          ("interactive queue p95 (s)", "interactive_queue_p95_s", False),
          ("interactive TTFT p95 (s)", "interactive_ttft_p95_s", False),
          ("batch queue p50 (s)", "batch_queue_p50_s", False),
          ("batch submission took (s)", "batch_submit_s", False),
          ("limiter: admits told to wait", "limiter_waits", False),
          ("workers' CPU (s)", "workers_cpu_s", False),
          ("redis-server CPU (s)", "redis_cpu_s", False),
          ("wall time (s)", "wall_s", False))
B_ROWS = (("peak concurrent streams", "peak_streams"), ("jobs/streams succeeded", "succeeded"),
          ("seconds to peak", "seconds_to_peak"),
          ("RSS idle (MiB)", "rss_idle_kib"), ("RSS at peak (MiB)", "rss_peak_kib"),
          ("memory per stream (KiB)", "kib_per_stream"),
          ("CPU per token (µs)", "cpu_us_per_token"), ("tokens relayed", "tokens"))


def rows_a(a: dict[str, Any]) -> list[Row]:
    limited, base = a["limiter"], a["baseline"]
    rows = []
    for label, name, percent in A_ROWS:
        text = label.format(bucket=limited["binding_bucket"].upper())
        if name == "ceiling_with_reserve":  # the baseline keeps no reserve
            rows.append((text, cell(limited[name], percent), "", ""))
            continue
        rows.append((text, cell(limited[name], percent), cell(base[name], percent),
                     cell(ratio(limited[name], base[name]))))
    return rows


def rows_b(b: dict[str, Any]) -> list[Row]:
    rows = []
    for label, name in B_ROWS:
        worker, sdk = b["worker"][name], b["sdk"][name]
        if name.startswith("rss"):
            worker, sdk = worker / 1024, sdk / 1024
        rows.append((label, cell(worker), cell(sdk), cell(ratio(worker, sdk))))
    return rows


def render(title: str, head: Row, rows: Sequence[Row]) -> str:
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(4)]
    lines = [title]
    for row in (head, *rows):
        lines.append(f"  {row[0]:<{widths[0]}}  " + "  ".join(
            f"{c:>{w}}" for c, w in zip(row[1:], widths[1:], strict=True)))
    return "\n".join(lines)


def table(results: dict[str, Any]) -> str:
    parts = []
    if "part_a" in results:
        a = results["part_a"]
        limits = " / ".join(f"{v:,} {k.upper()}" for k, v in a["limits"].items())
        title = (f"Part A — limiter on vs off: K={a['scale']} ({limits}); {a['workers']}; "
                 f"{a['jobs']['batch']} batch + {a['jobs']['interactive']} interactive jobs")
        parts.append(render(title, ("", "limiter", "baseline", "ratio"), rows_a(a)))
        parts.append(legend_a(a))
    if "part_b" in results:
        b = results["part_b"]
        title = (f"Part B — one worker process (-c {STREAM_SLOTS}) vs the bare SDK, "
                 f"{b['worker']['streams']} streams of {b['simulator']['reply_tokens']} tokens "
                 f"at {STREAM_TPS} tokens/s")
        parts.append(render(title, ("", "worker", "bare SDK", "ratio"), rows_b(b)))
    return "\n\n".join(parts)


def legend_a(a: dict[str, Any]) -> str:
    limited = a["limiter"]
    return "\n".join([
        "  share of limit used = ledger / (limit + limit x window/60): the bucket starts full "
        "and refills limit/60 per s;",
        f"    window = simulator reset -> last upstream call ({limited['window_s']} s with the "
        f"limiter). Steady-state = ledger rate over {int(100 * STEADY[0])}-"
        f"{int(100 * STEADY[1])} % of the window, once the first minute's limit is spent, "
        "/ (limit/60).",
        f"    best possible with the reserve kept = used / (used + {RESERVE:g} x limit): batch "
        "never spends the interactive reserve.",
        f"  baseline: {', '.join(f'{k}={v}' for k, v in BASELINE_ENV.items())} "
        "(retries honour retry-after); fresh Redis DB, reset simulator.",
        "  queue = started_at - created_at (the limiter's includes waiting for capacity, the "
        "baseline's not its 429 retries); TTFT = first_token_at - created_at (both);",
        "    ratio = limiter / baseline.",
    ])


# --- main -----------------------------------------------------------------------------------


async def run(plan: Plan, parts: str) -> dict[str, Any]:
    results: dict[str, Any] = {"plan": {**asdict(plan), "cpus": os.cpu_count()}}
    server = RedisServer().start()
    try:
        if parts in ("all", "b"):  # first: the bare SDK's RSS is measured in this process
            results["part_b"] = await part_b(plan, server)
        if parts in ("all", "a"):
            results["part_a"] = await part_a(plan, server)
    finally:
        server.stop()
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller run of about two minutes")
    parser.add_argument("--jobs", type=int, default=0, help="Part A jobs (default 2000)")
    parser.add_argument("--scale", type=int, default=0,
                        help="K: the low tier's limits times K (default: fits the run)")
    parser.add_argument("--streams", type=int, default=0, help="Part B streams (default 1100)")
    parser.add_argument("--only", choices=("a", "b"), help="run one part only")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    plan = make_plan(args)
    started = time.monotonic()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(run(plan, args.only or "all"))
    results["plan"]["wall_s"] = round(time.monotonic() - started, 1)
    results["command"] = " ".join(["python -m bench.ratelimit", *sys.argv[1:]])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(table(results) + f"\n\ntotal {results['plan']['wall_s']} s; "
                     f"figures in {RESULTS.relative_to(ROOT)}\n")


if __name__ == "__main__":
    main()
