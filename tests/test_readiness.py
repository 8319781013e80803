"""Readiness is Redis alone: an API with no live worker stays in service (it still queues and
serves jobs) and tells of the absence in `/health` and `/metrics`; freshness is judged on
Redis's clock, whatever the API host's says."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis.asyncio import Redis

from api.routes.health import WORKER_FRESH_SECONDS, live_workers
from shared import keys
from tests.stack import Proc, service_env, start_api


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def redis_now(redis: Redis) -> float:
    seconds, micros = await redis.time()
    return float(seconds + micros / 1_000_000)


async def test_freshness_is_judged_on_redis_clock(redis: Redis,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    now = await redis_now(redis)
    await redis.zadd(keys.workers(), {"recent": now - 8, "gone": now - WORKER_FRESH_SECONDS - 5})
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 10)  # the API host runs 10 s ahead
    assert await live_workers(redis) == 1


@pytest.fixture
def lone_api(redis_url: str) -> Iterator[Proc]:
    """An API on a Redis database no worker heartbeats into."""
    api = start_api(service_env(redis_url, "http://127.0.0.1:9"), name="api-no-workers")
    yield api
    api.stop()


@pytest.mark.integration
async def test_an_api_without_workers_is_ready_and_says_so(lone_api: Proc, redis: Redis) -> None:
    ready = httpx.get(lone_api.url + "/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "redis": "ok", "workers": 0}
    health = httpx.get(lone_api.url + "/health").json()
    assert health["status"] == "ok" and health["workers"] == 0
    assert "sidecar_workers 0.0" in httpx.get(lone_api.url + "/metrics").text
    await redis.zadd(keys.workers(), {"worker-1": await redis_now(redis)})
    assert httpx.get(lone_api.url + "/ready").json()["workers"] == 1
    assert "sidecar_workers 1.0" in httpx.get(lone_api.url + "/metrics").text
