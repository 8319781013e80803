"""Which Celery pool should hold a worker's streaming Claude calls? (issue 4: "threads pool or
gevent — measure and choose")

    python -m bench.pools            # about 5 minutes; figures to bench/results/pools.json

One Celery worker process at a time takes `size` streaming jobs at once, each one SDK call that
trickles its tokens in (the simulator on loopback, as Claude does), under three shapes:

- threads: Celery's threads pool, a blocking task per call (the SDK's sync client);
- gevent: Celery's gevent pool, the same blocking task on green threads;
- threads + loop: Sidecar's shape, the task thread hands the call to its process's asyncio
  loop (uvloop; the SDK's async client on aiohttp) and waits;
- loop, httpx: the same on the SDK's default httpx transport — the sync client's only
  transport, which the two pools above read on.

For each: the worker's CPU per streamed token, memory per stream, how long a job waited from
send to start, the time to first token the worker added to the simulator's, and the wall time
against the ideal (every stream at full speed). Ratios are against the threads pool at the
same size, in the same run.
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from bench.common.meters import cpu_seconds, rss_kib
from bench.common.output import RESULTS_DIR, log, write_results
from bench.common.procs import bench_env, running_redis, running_simulator
from bench.common.stats import ratio, spread
from bench.pools.app import LOOP, LOOP_HTTPX, QUEUE, SYNC, done_key
from shared.celery_app import create_celery
from shared.settings import load_settings
from tests.stack import Proc, start_worker

SIZES = (200, 500)  # streams at once
TOKENS = 60  # per stream
TOKENS_PER_S = 10  # per stream: 2 000 and 5 000 tokens/s in all
TTFT_MS = 200  # the simulator's own time to first token
WARMUP = 5  # jobs run before measuring, so clients and pools exist


@dataclass(frozen=True)
class Shape:
    key: str
    pool: str
    task: str


SHAPES = (Shape("threads", "threads", SYNC), Shape("gevent", "gevent", SYNC),
          Shape("threads + loop", "threads", LOOP), Shape("loop, httpx", "threads", LOOP_HTTPX))
BASELINE = "threads"


class PeakRss:
    """A thread that samples a process's resident memory every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_kib(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def run_jobs(store: redis.Redis, sender: Any, task: str, count: int,
             timeout: float) -> tuple[dict[int, float], list[dict[str, Any]]]:
    """`count` jobs sent back to back; when each was sent, and what each noted at its end."""
    token, sent = secrets.token_hex(8), {}
    for n in range(count):
        sent[n] = time.time()
        sender.send_task(task, args=[token, n, TOKENS], queue=QUEUE)
    records, deadline = [], time.monotonic() + timeout
    while len(records) < count and (left := deadline - time.monotonic()) > 0:
        popped = store.blpop([done_key(token)], timeout=min(1.0, left))
        if popped:
            records.append(json.loads(popped[1]))
    return sent, records


def figures(shape: Shape, size: int, sent: dict[int, float], records: list[dict[str, Any]],
            cpu: float, idle_kib: int, peak_kib: int) -> dict[str, Any]:
    tokens = sum(r["tokens"] for r in records)
    ideal = TTFT_MS / 1000 + TOKENS / TOKENS_PER_S
    wall = max((r["ended"] for r in records), default=math.nan) - min(sent.values())
    return {
        "shape": shape.key, "pool": shape.pool, "streams": size, "succeeded": len(records),
        "tokens": tokens, "cpu_s": round(cpu, 2),
        "cpu_us_per_token": round(1e6 * cpu / max(1, tokens), 1),
        "kib_per_stream": round((peak_kib - idle_kib) / size, 1), "rss_idle_kib": idle_kib,
        "send_to_start": spread([r["started"] - sent[r["n"]] for r in records]),
        "added_ttft": spread([r["first"] - r["started"] - TTFT_MS / 1000 for r in records
                              if r["first"] is not None]),
        "wall_s": round(wall, 2), "wall_over_ideal": ratio(wall, ideal),
    }


def measure(shape: Shape, size: int, env: dict[str, str], redis_url: str) -> dict[str, Any]:
    sender = create_celery(load_settings(redis_url=redis_url))
    store = redis.Redis.from_url(redis_url)
    worker: Proc | None = None
    try:
        worker = start_worker(env, f"pool-{shape.pool}", QUEUE, size, app="bench.pools.app",
                              pool=shape.pool)
        pid = worker.proc.pid
        _, warm = run_jobs(store, sender, shape.task, WARMUP, 60)
        if len(warm) < WARMUP:
            raise RuntimeError(f"{shape.key}: warm-up jobs did not end:\n{worker.output()[-3000:]}")
        time.sleep(1.0)
        idle, cpu = rss_kib(pid), cpu_seconds(pid)
        with PeakRss(pid) as rss:
            sent, records = run_jobs(store, sender, shape.task, size, 120)
        return figures(shape, size, sent, records, cpu_seconds(pid) - cpu, idle, rss.peak)
    finally:
        if worker is not None:
            worker.stop(10)
        sender.close()
        store.close()


def with_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        base = next(r for r in rows if r["shape"] == BASELINE and r["streams"] == row["streams"])
        row["vs_threads"] = {
            "cpu_per_token": ratio(row["cpu_us_per_token"], base["cpu_us_per_token"]),
            "memory_per_stream": ratio(row["kib_per_stream"], base["kib_per_stream"]),
            "send_to_start_p50": ratio(row["send_to_start"]["p50_ms"],
                                       base["send_to_start"]["p50_ms"]),
            "added_ttft_p50": ratio(row["added_ttft"]["p50_ms"], base["added_ttft"]["p50_ms"]),
            "wall": ratio(row["wall_s"], base["wall_s"]),
        }
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'shape':<15} {'streams':>7} {'ok':>4} {'µs CPU/token':>12} {'KiB/stream':>10} "
             f"{'start p50/p99 ms':>17} {'+TTFT p50/p99 ms':>17} {'wall/ideal':>10} "
             f"{'CPU vs threads':>14}"]
    for r in rows:
        start, ttft = r["send_to_start"], r["added_ttft"]
        lines.append(
            f"{r['shape']:<15} {r['streams']:>7} {r['succeeded']:>4} {r['cpu_us_per_token']:>12} "
            f"{r['kib_per_stream']:>10} {start['p50_ms']:>8}/{start['p99_ms']:<8} "
            f"{ttft['p50_ms']:>8}/{ttft['p99_ms']:<8} {r['wall_over_ideal']:>10} "
            f"{r['vs_threads']['cpu_per_token']:>13}x")
    return "\n".join(lines)


def main() -> None:
    rows = []
    with contextlib.ExitStack() as stops:
        server = running_redis(stops)
        sim = running_simulator(stops, ttft_ms=TTFT_MS, tokens_per_second=TOKENS_PER_S,
                                reply_tokens=TOKENS, log_level="WARNING")
        env = bench_env(server.url, sim.url, LOG_LEVEL="INFO")
        for size in SIZES:
            for shape in SHAPES:
                log(f"{shape.key}: {size} streams at once")
                rows.append(measure(shape, size, env, server.url))
    rows = with_ratios(rows)
    print(report(rows))
    write_results(RESULTS_DIR / "pools.json", {
        "command": "python -m bench.pools",
        "simulator": {"ttft_ms": TTFT_MS, "tokens_per_second": TOKENS_PER_S,
                      "reply_tokens": TOKENS},
        "rows": rows})


if __name__ == "__main__":
    main()
