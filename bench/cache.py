"""Response-cache hit latency through the API, against the same API's cheapest endpoint.

    python -m bench.cache [--requests 2000]

Starts its own redis-server, simulator, worker and API. Measures, with one keep-alive HTTP
client: `GET /health` (the floor: HTTP + routing, no Redis), `POST /api/chat` answered from the
cache (a hit), and the first, uncached request (a miss through the queue). Then fires 50
identical requests at once and counts the upstream calls (single-flight: goal 1).
Goal: hit p50 <= 2 ms (the seed promised < 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common.procs import running_api, running_redis, running_simulator, running_worker
from bench.common.stats import rank_percentile
from tests.stack import service_env


def timed(client: httpx.Client, method: str, path: str, n: int, **kwargs: Any) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.request(method, path, **kwargs)
        samples.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return samples


def single_flight(url: str, sim: Any) -> int:
    body = {"message": "single flight", "max_tokens": 60}

    async def fire() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            await asyncio.gather(*[client.post("/api/chat", json=body) for _ in range(50)])

    before = sim.stats()["requests"].get("/v1/messages", {}).get("200", 0)
    asyncio.run(fire())
    return int(sim.stats()["requests"]["/v1/messages"]["200"] - before)


def run(requests: int) -> dict[str, Any]:
    with contextlib.ExitStack() as stops:
        redis = running_redis(stops)
        sim = running_simulator(stops, ttft_ms=200, tokens_per_second=100)
        env = service_env(redis.url, sim.url, LOG_LEVEL="WARNING")
        running_worker(stops, env, "cache-bench")
        api = running_api(stops, env, "cache-api")
        with httpx.Client(base_url=api.url, timeout=30) as client:
            body = {"message": "How full is the Waimakariri?", "max_tokens": 50}
            miss = timed(client, "POST", "/api/chat", 1, json=body)[0]
            timed(client, "GET", "/health", 200)  # warm up
            health = timed(client, "GET", "/health", requests)
            hits = timed(client, "POST", "/api/chat", requests, json=body)
            assert client.post("/api/chat", json=body).json()["cached"] is True
        calls = single_flight(api.url, sim)
    return {
        "requests": requests,
        "health_p50_ms": statistics.median(health), "health_p99_ms": rank_percentile(health, 0.99),
        "hit_p50_ms": statistics.median(hits), "hit_p99_ms": rank_percentile(hits, 0.99),
        "hit_over_health_p50": statistics.median(hits) / statistics.median(health),
        "miss_ms": miss, "miss_over_hit": miss / statistics.median(hits),
        "upstream_calls_for_50_identical": calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    figures = run(parser.parse_args().requests)
    print(f"{'GET /health (floor)':32} p50 {figures['health_p50_ms']:6.2f} ms  "
          f"p99 {figures['health_p99_ms']:6.2f} ms")
    print(f"{'POST /api/chat cache hit':32} p50 {figures['hit_p50_ms']:6.2f} ms  "
          f"p99 {figures['hit_p99_ms']:6.2f} ms  ({figures['hit_over_health_p50']:.2f}x floor)")
    print(f"{'POST /api/chat miss (queue)':32} {figures['miss_ms']:6.1f} ms  "
          f"({figures['miss_over_hit']:.0f}x a hit; includes the simulator's 200 ms TTFT)")
    print(f"50 identical concurrent requests -> {figures['upstream_calls_for_50_identical']} "
          "upstream call(s)")
    out = Path(__file__).parent / "results" / "cache.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
