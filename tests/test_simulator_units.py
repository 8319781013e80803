"""Fast, process-free tests of the simulator's building blocks."""

from __future__ import annotations

import json
import random
import re
from enum import StrEnum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from simulator.__main__ import config_from_args
from simulator.caching import PromptCache
from simulator.config import SimConfig
from simulator.faults import FaultInjector, parse_fault
from simulator.limits import RateLimiter, Refusal, TokenBucket
from simulator.prompt import prompt_pieces, total_tokens
from simulator.replies import plan_reply
from simulator.textgen import count_tokens, cut_at_stop_sequence, request_digest, text_reply
from simulator.toolgen import generate_instance
from simulator.validation import parse_message_request
from simulator.wire import ApiError
from tests.simulator_fixtures import schema_errors


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- rate limits -------------------------------------------------------------------------


def test_bucket_refills_continuously_up_to_capacity() -> None:
    bucket = TokenBucket(60, now=0.0)  # one a second
    bucket.take(60, 0.0)
    assert bucket.refill(0.5) == pytest.approx(0.5)
    assert bucket.refill(30.0) == pytest.approx(30.0)
    assert bucket.refill(1000.0) == 60.0


def test_bucket_shortfall_caps_huge_asks_at_capacity() -> None:
    bucket = TokenBucket(600, now=0.0)  # ten a second
    bucket.take(600, 0.0)
    assert bucket.shortfall_seconds(50, 0.0) == pytest.approx(5.0)
    assert bucket.shortfall_seconds(10_000, 0.0) == pytest.approx(60.0)


def test_limiter_refuses_with_whole_second_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=3, clock=clock, wall=clock)
    for _ in range(3):
        assert limiter.admit(10, 100) == 100
    refusal = limiter.admit(10, 100)
    assert isinstance(refusal, Refusal)
    assert refusal.retry_after == 20  # one request refills in 60/3 s
    assert "3 requests per minute" in refusal.message
    clock.now += 20
    assert limiter.admit(10, 100) == 100


def test_limiter_retry_after_is_at_least_one_second() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=6000, clock=clock, wall=clock)
    for _ in range(6000):
        limiter.admit(1, 1)
    refusal = limiter.admit(1, 1)
    assert isinstance(refusal, Refusal) and refusal.retry_after == 1


def test_output_tokens_charged_at_max_then_refunded() -> None:
    clock = Clock()
    limiter = RateLimiter(otpm=1000, clock=clock, wall=clock)
    charge = limiter.admit(0, 800)
    assert charge == 800
    assert isinstance(limiter.admit(0, 800), Refusal)
    limiter.settle(charge, used=100)
    assert limiter.admit(0, 800) == 800


def test_input_tokens_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter(itpm=1200, clock=clock, wall=clock)
    assert limiter.admit(1000, 10) == 10
    refusal = limiter.admit(1000, 10)
    assert isinstance(refusal, Refusal)
    assert refusal.retry_after == 40  # 800 missing at 20/s
    assert "input tokens" in refusal.message


def test_headers_report_limits_remaining_and_rfc3339_reset() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=60, itpm=600, otpm=300, clock=clock, wall=clock)
    limiter.admit(100, 50)
    headers = limiter.headers()
    assert headers["anthropic-ratelimit-requests-limit"] == "60"
    assert headers["anthropic-ratelimit-requests-remaining"] == "59"
    assert headers["anthropic-ratelimit-input-tokens-remaining"] == "500"
    assert headers["anthropic-ratelimit-output-tokens-remaining"] == "250"
    # The most restrictive token bucket: output's 250 left, not the 750 of both together.
    assert headers["anthropic-ratelimit-tokens-limit"] == "300"
    assert headers["anthropic-ratelimit-tokens-remaining"] == "250"
    rfc3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    assert all(rfc3339.match(v) for k, v in headers.items() if k.endswith("-reset"))


def test_unlimited_buckets_have_no_headers_and_resize_keeps_usage() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=10, clock=clock, wall=clock)
    assert not any("tokens" in name for name in limiter.headers())
    limiter.admit(1, 1)
    limiter.configure(rpm=20, itpm=0, otpm=0)
    assert limiter.headers()["anthropic-ratelimit-requests-remaining"] == "19"
    limiter.configure(rpm=0, itpm=0, otpm=0)
    assert limiter.headers() == {}


# --- text generation -----------------------------------------------------------------------


def test_count_tokens_is_quarter_length_never_zero() -> None:
    assert count_tokens("") == 1
    assert count_tokens("abcd") == 1
    assert count_tokens("abcde") == 2


def test_text_is_deterministic_and_bounded_by_max_tokens() -> None:
    digest = request_digest(0, "m", None, [{"role": "user", "content": "hi"}], 1000, None)
    first, second = text_reply(digest, 1000), text_reply(digest, 1000)
    assert first == second
    assert 24 <= len(first.tokens) <= 160 and first.stop_reason == "end_turn"
    assert first.tokens[0][0] != " " and all(t.startswith(" ") for t in first.tokens[1:])
    for max_tokens in (1, 5, 23):
        capped = text_reply(digest, max_tokens)
        assert len(capped.tokens) == max_tokens and capped.stop_reason == "max_tokens"
    exact = text_reply(digest, 1000, reply_tokens=7)
    assert len(exact.tokens) == 7 and exact.stop_reason == "end_turn"


def test_seed_and_request_change_the_text() -> None:
    messages = [{"role": "user", "content": "hi"}]
    base = text_reply(request_digest(0, "m", None, messages, 100, None), 100)
    other_seed = text_reply(request_digest(1, "m", None, messages, 100, None), 100)
    other_prompt = text_reply(request_digest(0, "m", "sys", messages, 100, None), 100)
    assert base.tokens != other_seed.tokens and base.tokens != other_prompt.tokens


def test_stop_sequence_cuts_before_the_sequence() -> None:
    tokens = ["Soil", " moisture", " is", " low."]
    kept, stop = cut_at_stop_sequence(tokens, [" is l", "zzz", "ow"]) or ([], "")
    assert kept == ["Soil", " moisture"] and stop == " is l"
    kept, stop = cut_at_stop_sequence(tokens, ["ture"]) or ([], "")
    assert kept == ["Soil", " mois"] and stop == "ture"
    assert cut_at_stop_sequence(tokens, ["absent"]) is None


# --- tool input generation -------------------------------------------------------------------


class Severity(StrEnum):
    low = "low"
    high = "high"


class Region(BaseModel):
    name: str = Field(min_length=3, max_length=12)
    rainfall_mm: float = Field(ge=0, lt=50)
    towns: list[str] = Field(min_length=2, max_length=4)


class Assessment(BaseModel):
    summary: str
    severity: Severity
    score: int = Field(gt=0, le=5)
    ratio: float = Field(gt=0.0, lt=0.01)
    region: Region
    neighbours: list[Region] = Field(default_factory=list, max_length=2)
    notes: str | None = None
    kind: Literal["drought"] = "drought"
    tags: list[Literal["soil", "water", "feed"]] = Field(min_length=2, max_length=3)


class Chain(BaseModel):
    label: str
    next: Chain | None
    children: list[Chain] = Field(default_factory=list, max_length=2)


TRICKY_SCHEMAS: list[dict[str, Any]] = [
    Assessment.model_json_schema(),
    {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "minimum": 10, "exclusiveMaximum": 12},
            "b": {"type": "number", "exclusiveMinimum": 3, "maximum": 3.5},
            "c": {"type": "integer", "multipleOf": 7, "minimum": 8, "maximum": 30},
            "d": {"type": ["string", "null"], "minLength": 40},
            "e": {"const": 42},
            "f": {"type": "array", "items": {"type": "boolean"}, "uniqueItems": True},
            "g": {"allOf": [{"$ref": "#/definitions/P"}, {"required": ["y"]}]},
            "h": {"type": "array", "prefixItems": [{"type": "null"}, {"type": "number"}],
                  "minItems": 2, "maxItems": 2},
            "i": {"type": "string", "format": "date-time"},
            "j": {"oneOf": [{"type": "null"}, {"type": "integer", "maximum": -5}]},
        },
        "required": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"],
        "additionalProperties": False,
        "definitions": {"P": {"type": "object", "properties": {"x": {"type": "string"}}}},
    },
    {"type": "object", "properties": {"tree": {"$ref": "#"}, "leaf": {"type": "string"}}},
    Chain.model_json_schema(),
    {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {
            "b": {"type": "integer", "exclusiveMinimum": True, "minimum": 3, "maximum": 4},
            "n": {"type": "number", "exclusiveMaximum": True, "minimum": 0, "maximum": 0.001},
        },
        "required": ["b", "n"],
    },
]


@pytest.mark.parametrize("schema", TRICKY_SCHEMAS)
def test_generated_instances_validate(schema: dict[str, Any]) -> None:
    for seed in range(25):
        instance = generate_instance(schema, random.Random(seed))
        assert schema_errors(instance, schema) == [], json.dumps(instance)


def test_generated_instances_validate_with_jsonschema_when_available() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    for schema in TRICKY_SCHEMAS:
        for seed in range(10):
            jsonschema.validate(generate_instance(schema, random.Random(seed)), schema)


def test_pydantic_round_trip_and_prose_fields() -> None:
    instance = generate_instance(Assessment.model_json_schema(), random.Random(3))
    parsed = Assessment.model_validate(instance)
    assert len(parsed.summary.split()) >= 8 and parsed.summary.endswith(".")


def test_generation_is_deterministic_per_rng_state() -> None:
    schema = Assessment.model_json_schema()
    first, again = (generate_instance(schema, random.Random(9)) for _ in range(2))
    assert first == again


# --- validation, prompts, caching, faults ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 5}, "model"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]},
         "max_tokens"),
        ({"model": "m", "max_tokens": 200_000, "messages": [{"role": "user", "content": "x"}]},
         "max_tokens"),
        ({"model": "m", "max_tokens": 5}, "messages"),
        ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": "x"}]},
         "messages"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]},
         "messages.0.role"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 3}]},
         "messages.0.content"),
        ({"model": "m", "max_tokens": 5, "temperature": 1.5,
          "messages": [{"role": "user", "content": "x"}]}, "temperature"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
          "tools": [{"name": "t", "input_schema": {}}],
          "tool_choice": {"type": "tool", "name": "other"}}, "tool_choice"),
    ],
)
def test_validation_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_message_request(body)
    assert caught.value.status == 400 and caught.value.message.startswith(field)


def test_prompt_tokens_cover_system_messages_and_tools() -> None:
    tools: list[dict[str, Any]] = [{"name": "t", "input_schema": {"type": "object"}}]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "a" * 40},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "x", "name": "t",
                                           "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x",
                                      "content": [{"type": "text", "text": "b" * 80}]}]},
    ]
    pieces = prompt_pieces(tools, "s" * 400, messages)
    assert total_tokens(pieces) == (
        count_tokens(json.dumps(tools[0], sort_keys=True)) + 100 + 10 + count_tokens("t{}") + 20
    )


def test_cache_needs_minimum_prefix_and_reports_read_after_write() -> None:
    clock = Clock()
    cache = PromptCache(min_tokens=1024, clock=clock)
    marker = {"type": "ephemeral"}
    small = prompt_pieces([], [{"type": "text", "text": "x" * 400, "cache_control": marker}], [])
    assert cache.account("m", small).creation == 0
    system = [{"type": "text", "text": "x" * 8000, "cache_control": marker}]
    pieces = prompt_pieces([], system, [{"role": "user", "content": "question"}])
    first = cache.account("m", pieces)
    assert (first.creation, first.read, first.uncached) == (2000, 0, 2)
    assert cache.account("m", pieces).creation == 2000  # not committed yet
    cache.commit(first)
    second = cache.account("m", pieces)
    assert (second.creation, second.read, second.uncached) == (0, 2000, 2)
    assert cache.account("other-model", pieces).read == 0
    clock.now += 301
    assert cache.account("m", pieces).read == 0


def test_fault_specs_are_validated_and_consumed_in_order() -> None:
    with pytest.raises(ValueError):
        parse_fault({"kind": "explode"})
    with pytest.raises(ValueError):
        parse_fault({"kind": "status", "status": 200})
    injector = FaultInjector()
    injector.add(parse_fault({"kind": "status", "status": 529, "count": 2}))
    injector.add(parse_fault({"kind": "drop", "after_tokens": 1}))
    taken = [injector.take("/v1/messages") for _ in range(4)]
    assert [f.kind if f else None for f in taken] == ["status", "status", "drop", None]
    assert injector.take("/v1/messages/count_tokens") is None


def test_forced_tool_reply_respects_max_tokens() -> None:
    tools = [{"name": "assess", "input_schema": Assessment.model_json_schema()}]
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
            "tools": tools, "tool_choice": {"type": "any"}}
    reply = plan_reply(parse_message_request(body), seed=0, reply_tokens=0)
    assert reply.block_type == "tool_use" and reply.stop_reason == "max_tokens"
    assert reply.output_tokens == 5


def test_config_rejects_bad_values_and_unknown_runtime_fields() -> None:
    with pytest.raises(ValueError):
        SimConfig(fail_529_rate=2)
    with pytest.raises(ValueError):
        SimConfig().patched({"port": 1})
    assert SimConfig().patched({"rpm": 5}).rpm == 5


def test_cli_flags_and_environment() -> None:
    config = config_from_args(["--rpm", "5", "--ttft-ms", "1.5"], {"SIM_ITPM": "900"})
    assert (config.rpm, config.itpm, config.ttft_ms, config.api_key) == (5, 900, 1.5, None)
    assert config_from_args([], {"SIM_API_KEY": "k"}).api_key == "k"
    with pytest.raises(SystemExit):
        config_from_args(["--fail-529-rate", "2"], {})


def test_cache_breakpoints_on_tools_and_top_level() -> None:
    cache = PromptCache(min_tokens=1024, clock=Clock())
    tools: list[dict[str, Any]] = [
        {"name": "t", "description": "d" * 6000, "input_schema": {"type": "object"},
         "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "q" * 400}]
    pieces = prompt_pieces(tools, None, messages)
    first = cache.account("m", pieces)
    assert first.creation == first.creation_1h == pieces[0].tokens > 1024
    assert first.uncached == 100
    cache.commit(first)
    whole = prompt_pieces(tools, None, messages, cache_control={"type": "ephemeral"})
    second = cache.account("m", whole)
    assert second.read == pieces[0].tokens and second.creation == 100
    assert second.uncached == 0
