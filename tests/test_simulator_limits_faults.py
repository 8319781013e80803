"""The simulator's rate limits, injected faults and control plane, driven through the real
`anthropic` SDK."""

from __future__ import annotations

import re
import time

import anthropic
import httpx2
import pytest

from tests.simulator_fixtures import HELLO, KEY, MODEL, SimProcess, wait_for

# Fixtures pytest finds here by name; `x as x` marks the imports as meant, not unused.
from tests.simulator_fixtures import reset_sim as reset_sim  # `clean`, autouse
from tests.simulator_fixtures import sdk_client as sdk_client  # `client`
from tests.simulator_fixtures import sim_process as sim_process  # `sim`

pytestmark = pytest.mark.integration

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# --- rate limits -----------------------------------------------------------------------------


def test_rate_limit_429_with_retry_after(client: anthropic.Anthropic, sim: SimProcess) -> None:
    sim.configure(rpm=3, itpm=100_000, otpm=50_000)
    ok = client.messages.with_raw_response.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert ok.headers["anthropic-ratelimit-requests-limit"] == "3"
    assert ok.headers["anthropic-ratelimit-requests-remaining"] == "2"
    for _ in range(2):
        client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    headers = caught.value.response.headers
    assert headers["retry-after"].isdigit() and 1 <= int(headers["retry-after"]) <= 20
    for name in ("requests", "input-tokens", "output-tokens", "tokens"):
        assert RFC3339.match(headers[f"anthropic-ratelimit-{name}-reset"])
        assert headers[f"anthropic-ratelimit-{name}-remaining"].isdigit()
    assert caught.value.type == "rate_limit_error"
    assert sim.stats()["rate_limited"] == 1
    sim.configure(rpm=0)  # the stream's own headers, sent before its body
    body = {"model": MODEL, "max_tokens": 5, "messages": HELLO, "stream": True}
    url, headers = f"{sim.url}/v1/messages", {"x-api-key": KEY}
    with httpx2.stream("POST", url, json=body, headers=headers) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert "anthropic-ratelimit-requests-limit" not in r.headers
        assert r.headers["anthropic-ratelimit-output-tokens-limit"] == "50000"


def test_output_token_limit_429(client: anthropic.Anthropic, sim: SimProcess) -> None:
    sim.configure(otpm=1000)
    client.messages.create(model=MODEL, max_tokens=900, messages=HELLO)  # refunds the unused
    client.messages.create(model=MODEL, max_tokens=900, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError, match="output tokens"):
        client.messages.create(
            model=MODEL, max_tokens=900, messages=HELLO, extra_body={"temperature": 0.5}
        )


# --- injected faults -------------------------------------------------------------------------


def test_injected_529_and_sdk_retry(client: anthropic.Anthropic, sim: SimProcess) -> None:
    sim.fault(kind="status", status=529)
    with pytest.raises(anthropic.OverloadedError) as caught:
        client.messages.create(model=MODEL, max_tokens=5, messages=HELLO)
    assert caught.value.status_code == 529 and caught.value.type == "overloaded_error"
    sim.fault(kind="status", status=529, count=2, headers={"retry-after-ms": "10"})
    retrying = client.with_options(max_retries=2)
    assert retrying.messages.create(model=MODEL, max_tokens=5, messages=HELLO).content
    assert sim.stats()["requests"]["/v1/messages"] == {"200": 1, "529": 3}


def test_injected_429_without_retry_after(client: anthropic.Anthropic, sim: SimProcess) -> None:
    sim.fault(kind="status", status=429, error_type="rate_limit_error", message="spend limit")
    with pytest.raises(anthropic.RateLimitError, match="spend limit") as caught:
        client.messages.create(model=MODEL, max_tokens=5, messages=HELLO)
    assert "retry-after" not in caught.value.response.headers


def test_random_500_rate(client: anthropic.Anthropic, sim: SimProcess) -> None:
    sim.configure(fail_500_rate=1.0)
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(model=MODEL, max_tokens=5, messages=HELLO)
    assert caught.value.status_code == 500 and caught.value.type == "api_error"
    sim.configure(fail_500_rate=0.5)
    outcomes = set()
    for _ in range(20):
        try:
            client.messages.create(model=MODEL, max_tokens=2, messages=HELLO)
            outcomes.add(200)
        except anthropic.InternalServerError:
            outcomes.add(500)
    assert outcomes == {200, 500}


def test_mid_stream_error_event(client: anthropic.Anthropic, sim: SimProcess) -> None:
    sim.fault(kind="stream_error", after_tokens=3, error_type="overloaded_error")
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught, client.messages.stream(
        model=MODEL, max_tokens=100, messages=HELLO
    ) as stream:
        received.extend(stream.text_stream)
    assert len(received) >= 1
    assert caught.value.type == "overloaded_error"
    assert wait_for(lambda: sim.stats()["streams"]["errored"] == 1)


def test_dropped_stream(client: anthropic.Anthropic, sim: SimProcess) -> None:
    sim.fault(kind="drop", after_tokens=2)
    with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)), \
            client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
        for _ in stream.text_stream:
            pass
    sim.fault(kind="drop")
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert wait_for(lambda: sim.stats()["streams"]["dropped"] == 1)
    assert "Traceback" not in sim.log()


def test_delay_fault(client: anthropic.Anthropic, sim: SimProcess) -> None:
    sim.fault(kind="delay_ms", ms=300)
    started = time.monotonic()
    client.messages.create(model=MODEL, max_tokens=5, messages=HELLO)
    assert time.monotonic() - started >= 0.3


def test_client_disconnect_counts_as_aborted(client: anthropic.Anthropic, sim: SimProcess) -> None:
    sim.configure(tokens_per_second=20)
    with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
        for index, _ in enumerate(stream.text_stream):
            if index == 1:
                break
    stats = wait_for(lambda: (s := sim.stats())["streams"]["aborted"] == 1 and s)
    assert stats["streams"]["open"] == 0 and stats["streams"]["completed"] == 0
    assert 2 <= stats["tokens"]["output_tokens"] < 100


# --- control plane ---------------------------------------------------------------------------


def test_control_endpoints(sim: SimProcess) -> None:
    queued = sim.fault(kind="status", status=500, count=2)
    assert queued[0]["count"] == 2
    assert sim.control("DELETE", "/_sim/faults") == {"faults": []}
    assert sim.configure(rpm=7)["rpm"] == 7
    assert sim.control("GET", "/_sim/config")["api_key"] == "***"
    bad = httpx2.post(f"{sim.url}/_sim/config", json={"port": 1})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    bad_fault = httpx2.post(f"{sim.url}/_sim/faults", json={"kind": "status", "status": 200})
    assert bad_fault.status_code == 400
    stats = sim.stats()
    assert {"requests", "streams", "tokens", "rate_limited"} <= set(stats)
