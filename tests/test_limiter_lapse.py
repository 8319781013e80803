"""A dead worker's share of the limiter lapses: its calls in flight free their slots a lease
after it stops refreshing them, and its waiters stop counting in the queue; a live worker keeps
both, through Redis going away and coming back. Against real redis-servers."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from shared import keys, limiter_scripts
from shared.limiter import Admission, Limiter
from shared.settings import Settings, load_settings
from tests.procs import RedisServer
from workers import admission

LEASE = 2.0
ROOT = Path(__file__).resolve().parent.parent


def short_lease() -> Settings:
    return load_settings().model_copy(update={"job_lease_seconds": LEASE})


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def take(limiter: Limiter, call: str, cap: int = 1, reserve: float = 0.0,
               limits: dict[str, int] | None = None) -> Admission:
    limits = limits or {"rpm": 6000, "itpm": 0, "otpm": 0}
    return await limiter.admit("m", call, 10, 10, reserve, limits, cap)


async def redis_now(redis: Redis) -> float:
    seconds, micros = await redis.time()
    return seconds + micros / 1_000_000


async def test_a_dead_holders_slot_comes_back_after_the_lease(redis: Redis) -> None:
    dead, live = Limiter(redis, short_lease()), Limiter(redis, short_lease())
    assert (await take(dead, "dead")).admitted  # then its worker is killed: no settle, no refresh
    assert (await take(live, "next")).reason == "inflight"
    await asyncio.sleep(LEASE + 0.3)
    assert (await take(live, "next")).admitted


async def test_a_pipelined_admission_holds_for_a_lease_and_is_kept(redis: Redis) -> None:
    limiter = Limiter(redis, short_lease())
    async with redis.pipeline(transaction=False) as pipe:
        limiter.queue_admit(pipe, "m", "piped", 10, 10, 0.0, {"rpm": 6000}, 1)
        await redis.script_load(limiter_scripts.ADMIT)  # as runner.prepare does
        result, = await pipe.execute(raise_on_error=False)
    assert (await limiter.admitted("m", result, call_id="piped")).admitted
    score = await redis.zscore(keys.inflight("m"), "piped")
    assert score is not None and score <= await redis_now(redis) + LEASE + 0.1
    await asyncio.sleep(1.0)
    await limiter.refresh()
    score = await redis.zscore(keys.inflight("m"), "piped")
    assert score is not None and score > await redis_now(redis) + LEASE - 0.2


async def test_keep_alive_holds_a_live_slot_past_the_lease(redis: Redis) -> None:
    live = Limiter(redis, short_lease())
    keeper = asyncio.create_task(live.keep_alive())
    try:
        assert (await take(live, "long call")).admitted
        await asyncio.sleep(LEASE * 1.5 + 0.3)
        assert (await take(live, "other")).reason == "inflight"
        await live.settle("m", "long call", 10, 10, 10, 10)
        await asyncio.sleep(LEASE / 4 + 0.2)  # a refresh after the settle does not bring it back
        assert await redis.zscore(keys.inflight("m"), "long call") is None
        assert (await take(live, "other")).admitted
        assert not keeper.done()
    finally:
        keeper.cancel()


async def test_keep_alive_outlives_a_redis_restart(caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer(appendonly=True).start()  # its data survives the restart
    redis = Redis.from_url(server.url, socket_timeout=1)
    live = Limiter(redis, short_lease())
    keeper = asyncio.create_task(live.keep_alive())
    try:
        assert (await take(live, "held")).admitted
        await asyncio.sleep(0.2)
        with caplog.at_level(logging.WARNING, logger="sidecar.worker"):
            await asyncio.to_thread(server.stop, keep_data=True)
            await asyncio.sleep(LEASE / 2)
            await asyncio.to_thread(server.start)  # empty script cache: NOSCRIPT next time
            await asyncio.sleep(LEASE * 0.75)
        warned = [r for r in caplog.records if r.name == "sidecar.worker"
                  and r.levelno == logging.WARNING and "keep-alive" in r.getMessage()]
        assert warned and not keeper.done()
        score = await redis.zscore(keys.inflight("m"), "held")
        assert score is not None and score > await redis_now(redis) + LEASE / 2
        assert (await take(live, "other")).reason == "inflight"
    finally:
        keeper.cancel()
        await redis.aclose()
        server.stop()


async def test_lapsed_waiters_do_not_count_ahead(redis: Redis) -> None:
    limiter = Limiter(redis, short_lease())
    limits = {"rpm": 60, "itpm": 0, "otpm": 0}
    for n in range(48):  # batch fills its 80 % share
        assert (await take(limiter, f"b{n}", 0, 0.2, limits)).admitted
    alone = (await take(limiter, "first", 0, 0.2, limits)).wait
    now = await redis_now(redis)
    lapsed = {f"dead{n}": now - 1 for n in range(10)}
    await redis.zadd(keys.waiting("m"), {**lapsed, "alive": now + 60})
    queued = (await take(limiter, "next", 0, 0.2, limits)).wait
    assert queued == pytest.approx(alone + 1, abs=0.2)  # only the live waiter is ahead
    assert await redis.zcard(keys.waiting("m")) == 1
    assert (await limiter.snapshot("m"))["waiting"] == 1


_WAITER = """
import asyncio, sys
from datetime import UTC, datetime
from redis.asyncio import Redis
from shared.limiter import Limiter
from shared.settings import load_settings
from workers import admission

admission.MAX_NAP = 0.2
settings = load_settings().model_copy(update={"job_lease_seconds": %r})
record = {"model": "m", "priority": "interactive",
          "created_at": datetime.now(UTC).isoformat()}
limiter = Limiter(Redis.from_url(sys.argv[1]), settings)
asyncio.run(admission.reserve(limiter, settings, record, {"max_tokens": 10}, "doomed", 10))
"""


async def test_a_killed_waiter_stops_counting_after_its_ttl(redis: Redis, redis_url: str) -> None:
    limiter = Limiter(redis, short_lease())
    # Limits unknown: one call at a time, and this one holds on, so the waiter waits.
    assert (await limiter.admit("m", "holder", 10, 10, 0.0, {}, 200, hold=3600)).admitted
    waiter = subprocess.Popen([sys.executable, "-c", _WAITER % LEASE, redis_url], cwd=ROOT,
                              start_new_session=True)
    try:
        for _ in range(300):
            if await redis.zscore(keys.waiting("m"), "doomed") is not None:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(LEASE)  # alive past one TTL: its naps kept the entry
        assert (await limiter.snapshot("m"))["waiting"] == 1
    finally:
        os.kill(waiter.pid, signal.SIGKILL)
        waiter.wait(10)
    await asyncio.sleep(LEASE + 0.3)
    assert (await limiter.snapshot("m"))["waiting"] == 0
    await take(limiter, "probe", cap=0, reserve=0.2)
    assert await redis.zcard(keys.waiting("m")) == 0  # ADMIT pruned it


async def test_the_waiting_ttl_outlasts_several_naps() -> None:
    settings = short_lease()
    assert admission.waiting_ttl(settings) >= 3 * admission.MAX_NAP
    assert admission.waiting_ttl(settings) >= settings.job_lease_seconds
