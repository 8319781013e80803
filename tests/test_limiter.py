"""The limiter's Lua scripts against a real redis-server: refill, reservation, refund,
in-flight cap, cool-down, header learning and the interactive reserve."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from shared import keys
from shared.limiter import Limiter
from shared.settings import load_settings

LIMITS = {"rpm": 60, "itpm": 6000, "otpm": 600}


@pytest.fixture
async def limiter(redis_url: str) -> AsyncIterator[Limiter]:
    redis = Redis.from_url(redis_url)
    yield Limiter(redis, load_settings())
    await redis.aclose()


async def admit(limiter: Limiter, call: str, tokens_in: int = 10, tokens_out: int = 100,
                reserve: float = 0.0, limits: dict[str, int] = LIMITS, cap: int = 0) -> tuple:
    result = await limiter.admit("m", call, tokens_in, tokens_out, reserve, limits, cap)
    return result.admitted, result.wait, result.reason


async def test_reservation_takes_capacity_and_then_asks_to_wait(limiter: Limiter) -> None:
    for n in range(6):  # 6 x 100 output tokens = the whole 600 OTPM bucket
        assert (await admit(limiter, f"c{n}"))[0]
    admitted, wait, reason = await admit(limiter, "c6")
    assert not admitted and reason == "otpm"
    assert wait == pytest.approx(100 * 60 / 600, rel=0.05)  # 10 s until 100 tokens refill
    snap = await limiter.snapshot("m")
    assert snap["in_flight"] == 6 and snap["remaining"]["otpm"] < 1


async def test_refund_returns_unused_tokens_and_frees_the_slot(limiter: Limiter) -> None:
    for n in range(6):
        await admit(limiter, f"c{n}")
    await limiter.settle("m", "c0", 10, 10, 100, 20)  # used 20 of 100 output tokens
    snap = await limiter.snapshot("m")
    assert snap["remaining"]["otpm"] == pytest.approx(80, abs=1)
    assert snap["in_flight"] == 5
    assert (await admit(limiter, "c7", tokens_out=80))[0]


async def test_buckets_refill_continuously(limiter: Limiter) -> None:
    slow = {"rpm": 120, "itpm": 0, "otpm": 0}  # two requests a second
    for n in range(120):
        assert (await admit(limiter, f"c{n}", limits=slow))[0]
    admitted, wait, _ = await admit(limiter, "x", limits=slow)
    assert not admitted and 0 < wait <= 0.5
    await asyncio.sleep(0.55)  # one request refills; a fixed window would give none or all
    assert (await admit(limiter, "y", limits=slow))[0]
    assert not (await admit(limiter, "z", limits=slow))[0]


async def test_batch_leaves_the_interactive_reserve(limiter: Limiter) -> None:
    limits = {"rpm": 10, "itpm": 0, "otpm": 0}
    admitted = [(await admit(limiter, f"b{n}", reserve=0.2, limits=limits))[0] for n in range(10)]
    assert admitted.count(True) == 8  # batch stops at 80 %
    assert (await admit(limiter, "i1", limits=limits))[0]  # a person still gets through
    assert (await admit(limiter, "i2", limits=limits))[0]


async def test_in_flight_cap(limiter: Limiter) -> None:
    assert (await admit(limiter, "a", cap=2))[0] and (await admit(limiter, "b", cap=2))[0]
    assert (await admit(limiter, "c", cap=2))[2] == "inflight"
    await limiter.settle("m", "a", 10, 10, 100, 100)
    assert (await admit(limiter, "c", cap=2))[0]


async def test_cooldown_is_shared(limiter: Limiter) -> None:
    await limiter.cooldown("m", 2.0)
    admitted, wait, reason = await admit(limiter, "a")
    assert not admitted and reason == "cooldown" and 1.5 < wait <= 2.0
    assert (await limiter.snapshot("m"))["upstream_429"] == 1


async def test_headers_teach_limits_and_win_over_settings(limiter: Limiter) -> None:
    too_high = {"rpm": 10_000, "itpm": 1_000_000, "otpm": 100_000}
    assert (await admit(limiter, "a", limits=too_high))[0]
    await limiter.learn("m", {
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "3",
        "anthropic-ratelimit-output-tokens-limit": "8000",
    })
    snap = await limiter.snapshot("m")
    assert snap["limits"] == {"rpm": 50, "itpm": 1_000_000, "otpm": 8000}
    assert snap["source"] == "headers" and snap["remaining"]["rpm"] == pytest.approx(3, abs=1)
    # The configured guess no longer overrides what the upstream said.
    await admit(limiter, "b", limits=too_high)
    assert (await limiter.snapshot("m"))["limits"]["rpm"] == 50


async def test_unknown_limits_probe_one_call_until_headers_arrive(limiter: Limiter) -> None:
    unknown = {"rpm": 0, "itpm": 0, "otpm": 0}
    assert (await admit(limiter, "probe", limits=unknown, cap=100))[0]
    assert (await admit(limiter, "second", limits=unknown, cap=100))[2] == "inflight"
    await limiter.learn("m", {"anthropic-ratelimit-requests-limit": "100",
                              "anthropic-ratelimit-requests-remaining": "99"})
    assert (await admit(limiter, "second", limits=unknown, cap=100))[0]


async def test_keys_share_a_cluster_hash_tag() -> None:
    tag = keys.limits("m").split("{")[1].split("}")[0]
    assert tag == keys.inflight("m").split("{")[1].split("}")[0]


async def test_batch_waits_behind_the_batch_queue(limiter: Limiter) -> None:
    limits = {"rpm": 60, "itpm": 0, "otpm": 0}
    for n in range(48):  # batch fills its 80 % share
        assert (await admit(limiter, f"b{n}", reserve=0.2, limits=limits))[0]
    _, alone, _ = await admit(limiter, "first", reserve=0.2, limits=limits)
    await limiter.redis.zadd(keys.waiting("m"), {f"w{n}": 1e12 for n in range(10)})
    _, queued, _ = await admit(limiter, "eleventh", reserve=0.2, limits=limits)
    assert queued == pytest.approx(alone + 10, abs=0.2)  # ten requests ahead at one a second
    _, interactive_wait, _ = await admit(limiter, "person", limits=limits)
    assert interactive_wait == 0  # a person does not queue behind the batch


async def test_big_requests_are_counted_by_claude(redis_url: str) -> None:
    import anthropic

    from tests.simulator_fixtures import start_simulator
    from workers.admission import input_tokens

    sim = start_simulator()
    try:
        client = anthropic.AsyncAnthropic(base_url=sim.url, api_key="k", max_retries=0)
        request = {"model": "claude-sonnet-5-5", "max_tokens": 10,
                   "messages": [{"role": "user", "content": "dry " * 400}]}
        local = await input_tokens(client, request, exact_above=10**9)
        exact = await input_tokens(client, request, exact_above=0)
        calls = sim.stats()["requests"].get("/v1/messages/count_tokens", {})
        await client.close()
    finally:
        sim.stop()
    assert calls == {"200": 1}  # only the big one asked Claude
    assert local > 0 and exact > 0
