"""The simulator driven through the real `anthropic` SDK, as the service under test will use it:
plain messages, tool use, prompt caching and the requests it refuses."""

from __future__ import annotations

import json
import re
from typing import Any

import anthropic
import httpx2
import pytest
from pydantic import BaseModel, Field

from tests.simulator_fixtures import HELLO, KEY, MODEL, SimProcess, schema_errors

# Fixtures pytest finds here by name; `x as x` marks the imports as meant, not unused.
from tests.simulator_fixtures import reset_sim as reset_sim  # `clean`, autouse
from tests.simulator_fixtures import sdk_client as sdk_client  # `client`
from tests.simulator_fixtures import sim_process as sim_process  # `sim`

pytestmark = pytest.mark.integration


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


# --- refused requests ------------------------------------------------------------------------


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
