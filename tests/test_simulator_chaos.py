"""The simulator as a chaos bench meets it: default-tier rate-limit headers on every answer
(enforced exactly as reported), random faults of every kind by seed, and a ledger of calls and
tokens billed to hold a client's own figures against."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anthropic
import httpx2
import pytest
from redis.asyncio import Redis

from shared.limiter import Limiter
from shared.settings import load_settings
from simulator.config import DEFAULT_TIER
from tests.simulator_fixtures import HELLO, KEY, MODEL, SimProcess, wait_for

# Fixtures pytest finds here by name; `x as x` marks the imports as meant, not unused.
from tests.simulator_fixtures import reset_sim as reset_sim  # `clean`, autouse
from tests.simulator_fixtures import sdk_client as sdk_client  # `client`
from tests.simulator_fixtures import sim_process as sim_process  # `sim`

pytestmark = pytest.mark.integration
LIMIT_HEADERS = {"requests": "rpm", "input-tokens": "itpm", "output-tokens": "otpm"}


def post(sim: SimProcess, path: str, body: dict[str, Any]) -> httpx2.Response:
    return httpx2.post(sim.url + path, json=body, headers={"x-api-key": KEY}, timeout=10)


def message(max_tokens: int = 5, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": max_tokens, "messages": HELLO, **extra}


# --- rate-limit headers ------------------------------------------------------------------------


def test_every_answer_reports_the_default_tier(sim: SimProcess) -> None:
    answers = [post(sim, "/v1/messages", message()),
               post(sim, "/v1/messages/count_tokens", {"model": MODEL, "messages": HELLO}),
               post(sim, "/v1/messages", {"model": MODEL}),  # a 400
               post(sim, "/v1/messages", message(stream=True))]
    assert [a.status_code for a in answers] == [200, 200, 400, 200]
    for answer in answers:
        for name, field in LIMIT_HEADERS.items():
            assert answer.headers[f"anthropic-ratelimit-{name}-limit"] == str(DEFAULT_TIER[field])
            assert int(answer.headers[f"anthropic-ratelimit-{name}-remaining"]) > 0
        assert "anthropic-ratelimit-tokens-remaining" in answer.headers


def test_a_client_pacing_on_the_headers_is_never_refused(sim: SimProcess) -> None:
    sim.configure(otpm=1000, reply_tokens=5)
    first = post(sim, "/v1/messages", message(max_tokens=10))
    room = int(first.headers["anthropic-ratelimit-output-tokens-remaining"])
    assert room == 995  # charged 10, refunded the 5 never generated
    second = post(sim, "/v1/messages", message(max_tokens=room))  # exactly what was reported
    assert second.status_code == 200
    room = int(second.headers["anthropic-ratelimit-output-tokens-remaining"])
    refused = post(sim, "/v1/messages", message(max_tokens=room + 60))  # 1 s refills ~17
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_zero_limits_send_no_headers(sim: SimProcess) -> None:
    sim.configure(rpm=0, itpm=0, otpm=0)
    answer = post(sim, "/v1/messages", message())
    assert answer.status_code == 200
    assert not [h for h in answer.headers if h.startswith("anthropic-ratelimit-")]


async def test_sidecars_limiter_learns_the_tier_or_notes_no_headers(
        sim: SimProcess, redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    limiter = Limiter(redis, load_settings())
    try:
        await limiter.learn("tier", dict(post(sim, "/v1/messages", message()).headers))
        sim.configure(rpm=0, itpm=0, otpm=0)
        unknown = {"rpm": 0, "itpm": 0, "otpm": 0}
        assert (await limiter.admit("none", "probe", 10, 5, 0.0, unknown, 0)).admitted
        await limiter.learn("none", dict(post(sim, "/v1/messages", message()).headers))
        tier, none = await limiter.snapshot("tier"), await limiter.snapshot("none")
    finally:
        await redis.aclose()
    assert tier["source"] == "headers" and tier["limits"] == DEFAULT_TIER
    assert none["source"] == "no-headers" and none["limits"] == unknown


# --- random faults -----------------------------------------------------------------------------


def test_each_random_fault_answers_as_documented(client: anthropic.Anthropic,
                                                 sim: SimProcess) -> None:
    sim.configure(fail_429_rate=1.0)
    limited = post(sim, "/v1/messages", message())
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert "x-should-retry" not in limited.headers
    sim.configure(fail_429_rate=0.0, fail_429_bare_rate=1.0)
    bare = post(sim, "/v1/messages", message())
    assert bare.status_code == 429 and bare.json()["error"]["type"] == "rate_limit_error"
    assert bare.headers["x-should-retry"] == "true" and "retry-after" not in bare.headers
    sim.configure(fail_429_bare_rate=0.0, fail_stream_rate=1.0)
    shown: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught, client.messages.stream(
            **message(max_tokens=50)) as stream:
        shown.extend(stream.text_stream)
    assert caught.value.type == "overloaded_error" and len(shown) >= 1
    sim.configure(fail_stream_rate=0.0, fail_drop_rate=1.0)
    with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)), \
            client.messages.stream(**message(max_tokens=50)) as stream:
        for _ in stream.text_stream:
            pass
    stats = wait_for(lambda: (s := sim.stats())["streams"]["dropped"] == 1 and s)
    assert stats["random_faults"] == {"fail_529_rate": 0, "fail_500_rate": 0, "fail_429_rate": 1,
                                      "fail_429_bare_rate": 1, "fail_stream_rate": 1,
                                      "fail_drop_rate": 1}
    assert stats["faults_injected"] == 4 and stats["streams"]["errored"] == 1


def outcomes(sim: SimProcess, calls: int) -> list[str]:
    seen = []
    for _ in range(calls):
        answer = post(sim, "/v1/messages", message())
        seen.append(f"{answer.status_code} {answer.headers.get('x-should-retry')}")
    return seen


def test_random_faults_mix_by_rate_and_repeat_with_the_seed(sim: SimProcess) -> None:
    rates = {"fail_529_rate": 0.2, "fail_500_rate": 0.1, "fail_429_rate": 0.2,
             "fail_429_bare_rate": 0.2}
    sim.configure(seed=7, **rates)
    first = outcomes(sim, 60)
    sim.control("POST", "/_sim/reset", {})  # same seed, same config: the draws start over
    assert outcomes(sim, 60) == first
    assert set(Counter(first)) == {"200 None", "529 None", "500 None", "429 None", "429 true"}


def test_fault_rates_are_validated(sim: SimProcess) -> None:
    for patch in ({"fail_drop_rate": 1.5}, {"fail_stream_rate": -0.1},
                  {"fail_429_rate": 0.6, "fail_429_bare_rate": 0.6}, {"fail_drop_rate": "x"}):
        answer = httpx2.post(f"{sim.url}/_sim/config", json=patch)
        assert answer.status_code == 400, patch
    assert sim.configure(fail_stream_rate=0.25)["fail_stream_rate"] == 0.25


# --- the ledger ----------------------------------------------------------------------------------


def test_the_ledger_bills_what_was_answered(client: anthropic.Anthropic, sim: SimProcess) -> None:
    whole = client.messages.create(**message(max_tokens=20))
    sim.fault(kind="status", status=529)  # billed nothing
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(**message())
    sim.fault(kind="stream_error", after_tokens=4)
    with pytest.raises(anthropic.APIStatusError), client.messages.stream(
            **message(max_tokens=50)) as stream:
        list(stream.text_stream)
    sim.fault(kind="drop", after_tokens=3)
    with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)), \
            client.messages.stream(**message(max_tokens=50)) as stream:
        list(stream.text_stream)
    stats = wait_for(lambda: (s := sim.stats())["calls"]["cut"] == 2 and s)
    assert stats["calls"] == {"answered": 3, "completed": 1, "cut": 2}
    tokens = stats["tokens"]
    assert tokens["input_tokens"] == 3 * whole.usage.input_tokens
    assert tokens["output_tokens_cut"] == 4 + 3
    assert tokens["output_tokens"] == whole.usage.output_tokens + 4 + 3
