"""The nightly drought report of 200 regions, three ways, priced from the simulator's ledger.

    python -m bench.cost [--regions 200]

1. naive: one plain call per region straight to Claude (the SDK, no prompt caching), as the
   seed's backend example did;
2. queue: a Sidecar batch in `queue` mode — the workers, the limiter, the cached method prompt;
3. anthropic_batch: a Sidecar batch in `anthropic_batch` mode — one Message Batch, half price,
   cached prompt.
Cost comes from the tokens the simulator recorded (so it is what the upstream would bill), using
Sidecar's price table. Goal: the best mode costs <= 45 % of naive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx

from bench.common.procs import running_api, running_redis, running_simulator, running_worker
from shared import pricing
from shared.jobtypes.drought import DroughtInput, build_request
from tests.procs import wait_until
from tests.simulator_fixtures import SimProcess
from tests.stack import Proc, _spawn, service_env

MODEL = "claude-sonnet-5-5"


def region(n: int) -> dict[str, Any]:
    return {"region": f"Region {n:03d}", "audience": "farmer", "indicators": {
        "spi_3m": round(-2.5 + (n % 10) * 0.4, 1), "soil_moisture_pct": 10 + (n * 7) % 80,
        "reservoir_pct": 20 + (n * 13) % 70, "rainfall_anomaly_pct": -60 + (n * 11) % 70}}


def ledger_cost(sim: SimProcess) -> tuple[float, dict[str, int]]:
    tokens = sim.stats()["tokens"]
    live = {k: tokens[k] for k in ("input_tokens", "output_tokens",
                                   "cache_creation_input_tokens", "cache_read_input_tokens")}
    batch = {k: tokens[f"batch_{k}"] for k in live}
    cost = pricing.cost_usd(MODEL, live) + pricing.cost_usd(MODEL, batch, batch=True)
    return cost, {k: live[k] + batch[k] for k in live}


async def naive(sim: SimProcess, count: int) -> None:
    client = anthropic.AsyncAnthropic(base_url=sim.url, api_key="k", max_retries=5)
    gate = asyncio.Semaphore(16)

    async def one(n: int) -> None:
        request = build_request(DroughtInput.model_validate(region(n)))
        system = [{k: v for k, v in block.items() if k != "cache_control"}
                  for block in request["system"]]  # no prompt caching
        async with gate:
            await client.messages.create(model=MODEL, max_tokens=1500,
                                         **{**request, "system": system})

    await asyncio.gather(*[one(n) for n in range(count)])
    await client.close()


def sidecar_batch(url: str, count: int, mode: str) -> dict[str, Any]:
    jobs = [{"type": "drought_analysis", "input": region(n), "model": MODEL} for n in range(count)]
    batch = httpx.post(url + "/api/batches", json={"jobs": jobs, "mode": mode},
                       timeout=120).raise_for_status().json()
    state: dict[str, Any] = {}

    def done() -> bool:
        state.update(httpx.get(f"{url}/api/batches/{batch['id']}", timeout=30).json())
        return bool(state["status"] != "running")

    wait_until(done, 600, f"{mode} batch done")
    return state


def measure(sim: SimProcess, label: str, run: Any) -> dict[str, Any]:
    sim.reset()
    started = time.perf_counter()
    outcome = run()
    wall = time.perf_counter() - started
    cost, tokens = ledger_cost(sim)
    row = {"mode": label, "cost_usd": round(cost, 5), "wall_seconds": round(wall, 2),
           "tokens": tokens}
    if isinstance(outcome, dict):
        row["sidecar_cost_usd"] = outcome["cost_usd"]
        row["succeeded"] = outcome["counts"]["succeeded"]
    return row


def measure_all(count: int) -> list[dict[str, Any]]:
    """The three ways, one after another, on one redis-server, simulator, worker, API and beat."""
    with contextlib.ExitStack() as stops:
        redis = running_redis(stops)
        sim = running_simulator(stops, ttft_ms=50, tokens_per_second=400,
                                batch_seconds_per_request=0.01)
        env = service_env(redis.url, sim.url, LOG_LEVEL="WARNING",
                          UPSTREAM_BATCH_POLL_SECONDS="1")
        running_worker(stops, env, "cost-worker", concurrency=100)
        url = running_api(stops, env).url
        schedule = Path(redis.dir) / "beat-schedule"
        beat, log = _spawn("beat", [sys.executable, "-m", "celery", "-A", "workers", "beat", "-s",
                                    str(schedule)], env)
        stops.callback(Proc("beat", beat, log).stop)
        return [measure(sim, "naive (SDK, no caching)", lambda: asyncio.run(naive(sim, count))),
                measure(sim, "queue + prompt caching", lambda: sidecar_batch(url, count, "queue")),
                measure(sim, "anthropic_batch + caching",
                        lambda: sidecar_batch(url, count, "anthropic_batch"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--regions", type=int, default=200)
    count = parser.parse_args().regions
    rows = measure_all(count)
    base = rows[0]["cost_usd"]
    print(f"{count} regions, model {MODEL}")
    for row in rows:
        row["cost_vs_naive"] = round(row["cost_usd"] / base, 3)
        print(f"{row['mode']:28} ${row['cost_usd']:.4f}  {row['cost_vs_naive']:6.1%} of naive  "
              f"{row['wall_seconds']:6.1f} s")
    out = Path(__file__).parent / "results" / "cost.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
