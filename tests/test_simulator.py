"""The simulator driven through the real `anthropic` SDK, as the service under test will use it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import MessageParam
from pydantic import BaseModel, Field

from tests.simulator_fixtures import SimProcess, schema_errors, start_simulator

pytestmark = pytest.mark.integration

MODEL = "claude-sonnet-5-5"
KEY = "sim-key"
HELLO: list[MessageParam] = [{"role": "user", "content": "How dry is the north paddock?"}]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    process = start_simulator(
        api_key=KEY, ttft_ms=5, tokens_per_second=2000, batch_seconds_per_request=0.02
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def clean(sim: SimProcess) -> None:
    sim.reset()


@pytest.fixture
def client(sim: SimProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=KEY, base_url=sim.url, max_retries=0) as sdk:
        yield sdk


def wait_for(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


# --- plain messages --------------------------------------------------------------------------


def test_create_returns_a_message(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=300, messages=HELLO)
    assert message.id.startswith("msg_") and len(message.id) >= 24
    assert message.type == "message" and message.role == "assistant" and message.model == MODEL
    assert message.content[0].type == "text" and message.content[0].text
    assert 1 <= message.usage.output_tokens <= 300
    assert message.usage.input_tokens > 0 and message.usage.cache_read_input_tokens == 0
    assert message.stop_reason == "end_turn"
    capped = client.messages.create(model=MODEL, max_tokens=7, messages=HELLO)
    assert capped.usage.output_tokens == 7 and capped.stop_reason == "max_tokens"


def test_same_request_same_text_and_seed_changes_it(
    client: anthropic.Anthropic, sim: SimProcess
) -> None:
    first = client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    second = client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert first.content == second.content and first.id != second.id
    sim.configure(seed=1)
    reseeded = client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert reseeded.content != first.content


def test_stream_helper_matches_non_streaming(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model=MODEL, max_tokens=120, messages=HELLO)
    with client.messages.stream(model=MODEL, max_tokens=120, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == plain.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert final.stop_reason == plain.stop_reason


def test_raw_stream_event_order(client: anthropic.Anthropic, sim: SimProcess) -> None:
    events = list(client.messages.create(model=MODEL, max_tokens=50, messages=HELLO, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    start = events[0].message  # type: ignore[union-attr]
    assert start.usage.output_tokens == 1 and start.stop_reason is None and start.content == []
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    body = {"model": MODEL, "max_tokens": 5, "messages": HELLO, "stream": True}
    raw = httpx2.post(f"{sim.url}/v1/messages", json=body, headers=headers).text
    names = re.findall(r"^event: (\w+)$", raw, flags=re.M)
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert all(frame.startswith("event: ") for frame in raw.strip().split("\n\n"))


async def test_async_client_create_and_stream(sim: SimProcess) -> None:
    async with anthropic.AsyncAnthropic(api_key=KEY, base_url=sim.url, max_retries=0) as sdk:
        plain = await sdk.messages.create(model=MODEL, max_tokens=40, messages=HELLO)
        async with sdk.messages.stream(model=MODEL, max_tokens=40, messages=HELLO) as stream:
            text = "".join([chunk async for chunk in stream.text_stream])
    assert text == plain.content[0].text  # type: ignore[union-attr]


def test_count_tokens_matches_usage(client: anthropic.Anthropic) -> None:
    system = "You advise farmers on drought resilience."
    counted = client.messages.count_tokens(model=MODEL, system=system, messages=HELLO)
    used = client.messages.create(model=MODEL, max_tokens=5, system=system, messages=HELLO)
    assert counted.input_tokens == used.usage.input_tokens > 0


# --- tool use --------------------------------------------------------------------------------


class Region(BaseModel):
    name: str = Field(min_length=3)
    rainfall_mm: float = Field(ge=0, le=400)


class DroughtReport(BaseModel):
    summary: str
    severity: str = Field(json_schema_extra={"enum": ["low", "moderate", "severe"]})
    confidence: float = Field(gt=0, lt=1)
    regions: list[Region] = Field(min_length=1, max_length=3)
    actions: list[str] = Field(min_length=2, max_length=5)


REPORT_SCHEMA = DroughtReport.model_json_schema()
TOOLS: list[Any] = [
    {"name": "lookup", "description": "Look a town up", "input_schema": {
        "type": "object", "properties": {"town": {"type": "string"}}, "required": ["town"]}},
    {"name": "drought_report", "description": "File a report", "input_schema": REPORT_SCHEMA},
]


def test_forced_tool_use_validates(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=2000, messages=HELLO, tools=TOOLS,
        tool_choice={"type": "tool", "name": "drought_report"},
    )
    assert message.stop_reason == "tool_use" and len(message.content) == 1
    block = message.content[0]
    assert block.type == "tool_use" and block.id.startswith("toolu_")
    assert block.name == "drought_report"
    assert schema_errors(block.input, REPORT_SCHEMA) == []
    report = DroughtReport.model_validate(block.input)
    assert len(report.summary.split()) >= 8
    assert message.usage.output_tokens == -(-len(json.dumps(block.input)) // 4)


def test_forced_tool_use_streams_input_json(client: anthropic.Anthropic) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL, "max_tokens": 2000, "messages": HELLO, "tools": TOOLS,
        "tool_choice": {"type": "tool", "name": "drought_report"},
    }
    plain = client.messages.create(**kwargs)
    with client.messages.stream(**kwargs) as stream:
        deltas = [e for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert len(deltas) >= 3 and all(d.delta.type == "input_json_delta" for d in deltas)
    assert final.content[0].input == plain.content[0].input  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"


def test_tool_choice_any_uses_first_tool_and_auto_writes_text(client: anthropic.Anthropic) -> None:
    anyone = client.messages.create(
        model=MODEL, max_tokens=500, messages=HELLO, tools=TOOLS, tool_choice={"type": "any"}
    )
    assert anyone.content[0].type == "tool_use" and anyone.content[0].name == "lookup"
    auto = client.messages.create(model=MODEL, max_tokens=50, messages=HELLO, tools=TOOLS)
    assert auto.content[0].type == "text" and auto.stop_reason != "tool_use"


def test_forced_tool_use_truncated_at_max_tokens(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=6, messages=HELLO, tools=TOOLS,
        tool_choice={"type": "tool", "name": "drought_report"},
    )
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 6


# --- errors ----------------------------------------------------------------------------------


def test_wrong_or_missing_key_is_401(sim: SimProcess) -> None:
    with anthropic.Anthropic(api_key="wrong", base_url=sim.url, max_retries=0) as sdk, \
            pytest.raises(anthropic.AuthenticationError) as caught:
        sdk.messages.create(model=MODEL, max_tokens=5, messages=HELLO)
    assert caught.value.type == "authentication_error" and caught.value.request_id
    response = httpx2.post(f"{sim.url}/v1/messages", json={})
    assert response.status_code == 401 and response.json()["type"] == "error"


def test_bad_requests_name_the_field(client: anthropic.Anthropic, sim: SimProcess) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=MODEL, max_tokens=0, messages=HELLO)
    assert "max_tokens" in str(caught.value.api_message)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=MODEL, max_tokens=5, messages=[])
    assert str(caught.value.api_message).startswith("messages")
    with pytest.raises(anthropic.BadRequestError, match="temperature"):
        client.messages.create(
            model=MODEL, max_tokens=5, messages=HELLO, extra_body={"temperature": 3}
        )
    with pytest.raises(anthropic.BadRequestError, match="tool_choice"):
        client.messages.create(
            model=MODEL, max_tokens=5, messages=HELLO, tools=TOOLS,
            tool_choice={"type": "tool", "name": "nope"},
        )
    raw = httpx2.post(
        f"{sim.url}/v1/messages", headers={"x-api-key": KEY},
        json={"model": MODEL, "messages": HELLO},
    )
    assert raw.status_code == 400
    assert raw.json()["error"] == {
        "type": "invalid_request_error", "message": "max_tokens: Field required"
    }
    assert raw.headers["request-id"].startswith("req_")
    bad_json = httpx2.post(f"{sim.url}/v1/messages", headers={"x-api-key": KEY}, content=b"{")
    assert bad_json.status_code == 400


def test_unknown_path_is_404(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        client.get("/v1/nowhere", cast_to=object)


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


# --- prompt caching --------------------------------------------------------------------------


def test_prompt_caching_reports_creation_then_read(client: anthropic.Anthropic) -> None:
    guide = "Drought resilience guide for the district. " * 120  # ~1300 tokens
    system: Any = [{"type": "text", "text": guide, "cache_control": {"type": "ephemeral"}}]
    first = client.messages.create(model=MODEL, max_tokens=5, system=system, messages=HELLO)
    second = client.messages.create(model=MODEL, max_tokens=5, system=system, messages=HELLO)
    cached = -(-len(guide) // 4)
    assert first.usage.cache_creation_input_tokens == cached
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == cached
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == first.usage.input_tokens > 0
    short: Any = [{"type": "text", "text": "tiny", "cache_control": {"type": "ephemeral"}}]
    for _ in range(2):
        small = client.messages.create(model=MODEL, max_tokens=5, system=short, messages=HELLO)
        assert small.usage.cache_read_input_tokens == 0
        assert small.usage.cache_creation_input_tokens == 0


# --- batches ---------------------------------------------------------------------------------


def test_batch_lifecycle(client: anthropic.Anthropic, sim: SimProcess) -> None:
    requests: list[Any] = [
        {"custom_id": "first", "params": {"model": MODEL, "max_tokens": 20, "messages": HELLO}},
        {"custom_id": "second", "params": {"model": MODEL, "max_tokens": 30, "messages": HELLO}},
        {"custom_id": "broken", "params": {"model": MODEL, "messages": HELLO}},
    ]
    batch = client.messages.batches.create(requests=requests)
    assert batch.id.startswith("msgbatch_") and batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3 and batch.results_url is None
    ended = wait_for(
        lambda: (b := client.messages.batches.retrieve(batch.id)).processing_status == "ended"
        and b
    )
    assert ended.request_counts.succeeded == 2 and ended.request_counts.errored == 1
    assert ended.ended_at is not None and ended.results_url
    results: dict[str, Any] = {
        r.custom_id: r.result for r in client.messages.batches.results(batch.id)
    }
    assert set(results) == {"first", "second", "broken"}
    assert results["first"].type == "succeeded"
    sync = client.messages.create(model=MODEL, max_tokens=20, messages=HELLO)
    assert results["first"].message.content == sync.content
    assert results["broken"].type == "errored"
    assert "max_tokens" in results["broken"].error.error.message
    assert batch.id in [b.id for b in client.messages.batches.list(limit=5)]
    spent = sum(r.message.usage.output_tokens for r in results.values() if r.type == "succeeded")
    assert sim.stats()["tokens"]["batch_output_tokens"] == spent
    deleted = client.messages.batches.delete(batch.id)
    assert deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


def test_batch_cancel(client: anthropic.Anthropic, sim: SimProcess) -> None:
    sim.configure(batch_seconds_per_request=5)
    params: Any = {"model": MODEL, "max_tokens": 10, "messages": HELLO}
    batch = client.messages.batches.create(
        requests=[{"custom_id": f"r{i}", "params": params} for i in range(4)]
    )
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at
    ended = wait_for(
        lambda: (b := client.messages.batches.retrieve(batch.id)).processing_status == "ended"
        and b
    )
    assert ended.request_counts.canceled == 4
    assert {r.result.type for r in client.messages.batches.results(batch.id)} == {"canceled"}


def test_batch_list_pagination(client: anthropic.Anthropic) -> None:
    params: Any = {"model": MODEL, "max_tokens": 5, "messages": HELLO}
    ids = [
        client.messages.batches.create(requests=[{"custom_id": "a", "params": params}]).id
        for _ in range(5)
    ]
    page = client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
    assert [b.id for b in client.messages.batches.list(limit=2)] == ids[::-1]


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
