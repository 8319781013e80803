"""Part A of `bench.ratelimit`: the same job mix against the simulator's limits, with Sidecar's
limiter on, then off (the baseline)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.common.meters import CpuMeter
from bench.common.output import log
from bench.common.procs import bench_env, running_api, running_workers
from bench.ratelimit.jobs import run_jobs, submit_mix
from bench.ratelimit.limits_figures import MixRun, mix_figures, mix_ratios
from bench.ratelimit.plan import (
    BASELINE_ENV,
    BATCH_TOKENS,
    INTERACTIVE_TOKENS,
    LOW_TIER,
    MODEL,
    QUEUES,
    SLOTS,
    WORKERS,
    Plan,
)
from bench.ratelimit.sampler import Sampler
from tests.procs import RedisServer
from tests.simulator_fixtures import SimProcess, start_simulator


@dataclass(frozen=True)
class Mode:
    name: str
    db: int  # each mode on its own Redis database
    env: dict[str, str]


def limiter_state(api_url: str) -> dict[str, Any]:
    models_state = httpx.get(api_url + "/api/limits", timeout=10).json().get("models", {})
    return dict(models_state.get(MODEL, {}))


async def run_mix(plan: Plan, sim: SimProcess, server: RedisServer, mode: Mode) -> MixRun:
    redis_url = f"{server.url.rsplit('/', 1)[0]}/{mode.db}"
    env = bench_env(redis_url, sim.url, WORKER_CONCURRENCY=str(SLOTS), **mode.env)
    with contextlib.ExitStack() as stops:
        names = [f"rl{n}" for n in range(WORKERS)]
        workers = running_workers(stops, env, names, QUEUES, SLOTS, grace=5.0)
        api = running_api(stops, env, grace=5.0)
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
