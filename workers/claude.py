"""Calling Claude: the SDK client a worker process shares, one streamed call, and which
failures are worth another attempt.

Raw stream events are read instead of the SDK's `messages.stream()` helper, which rebuilds a
snapshot of the whole message on every event and costs ~3 times the CPU per token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2

from shared.settings import Settings
from shared.upstream import (
    caller_error,
    error_type,
    is_retryable,
    message,
    retry_after,
    should_retry,
)

__all__ = ["caller_error", "describe", "error_type", "is_retryable", "message", "retry_after",
           "should_retry", "stream_once"]


def create_client(settings: Settings, max_connections: int) -> anthropic.AsyncAnthropic:
    """One client per worker process, on the SDK's aiohttp transport (its `aiohttp` extra).

    A worker reads hundreds of streams at once, and its CPU goes into each chunk's trip through
    the HTTP stack: aiohttp's C parser and plain asyncio streams cost less than half of
    httpx's default stack per streamed event (60 against 129 µs here, 200 streams). SDK
    retries are off: the runner owns retries."""
    limits = httpx2.Limits(max_connections=max_connections,
                           max_keepalive_connections=max_connections)
    http_client = anthropic.DefaultAioHttpClient(limits=limits)
    return anthropic.AsyncAnthropic(
        api_key=settings.api_key() or "missing-key",
        base_url=settings.anthropic_base_url,
        max_retries=0,
        timeout=anthropic.Timeout(600.0, connect=10.0, read=120.0),
        http_client=http_client,
    )


@dataclass
class Completion:
    """What one streamed call produced, complete or cut short."""

    text: list[str] = field(default_factory=list)
    tool_inputs: dict[str, str] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    stop_reason: str | None = None
    deltas: int = 0  # text and tool-input deltas received
    model: str | None = None

    @property
    def full_text(self) -> str:
        return "".join(self.text)

    def count_cut_short(self) -> None:
        """A call cut short after it began (an error event, a dropped connection) never says
        how much it produced, yet what it streamed is billed: count one output token for each
        delta it streamed — the rule a killed worker's attempt is billed by (see
        `shared/lua/job/carry.lua`). Exact where each delta is one token (the simulator), a
        lower bound where a delta may hold several: never more than was produced."""
        if self.stop_reason is None and self.usage:
            self.usage["output_tokens"] = max(self.usage.get("output_tokens", 0), self.deltas)

    def tool_input(self, name: str) -> Any:
        """The parsed input of the named tool call (ValueError when it is not valid JSON)."""
        return json.loads(self.tool_inputs.get(name) or "null")


async def stream_once(
    client: anthropic.AsyncAnthropic,
    request: dict[str, Any],
    on_text: Callable[[str], None],
    completion: Completion,
    on_headers: Callable[[Mapping[str, str]], None] | None = None,
    on_json: Callable[[str], None] | None = None,
    on_usage: Callable[[dict[str, int]], None] | None = None,
) -> Completion:
    """One upstream call, filling `completion` as events arrive (so a cut-short call still
    tells what it streamed and used)."""
    stream = await client.messages.create(stream=True, **request)
    if on_headers is not None:
        on_headers(stream.response.headers)
    tool_name: str | None = None
    async with stream:
        async for event in stream:
            kind = event.type
            if kind == "content_block_delta":
                delta = event.delta
                completion.deltas += 1
                if delta.type == "text_delta":
                    completion.text.append(delta.text)
                    on_text(delta.text)
                elif delta.type == "input_json_delta" and tool_name is not None:
                    completion.tool_inputs[tool_name] += delta.partial_json
                    if on_json is not None:
                        on_json(delta.partial_json)
            elif kind == "content_block_start" and event.content_block.type == "tool_use":
                tool_name = event.content_block.name
                completion.tool_inputs[tool_name] = ""
            elif kind == "message_start":
                _started(event.message, completion, on_usage)
            elif kind == "message_delta":
                completion.stop_reason = event.delta.stop_reason
                completion.usage["output_tokens"] = event.usage.output_tokens
    return completion


def _started(message: Any, completion: Completion,
             on_usage: Callable[[dict[str, int]], None] | None) -> None:
    """A call's input usage is known when it starts; its output only when it ends."""
    completion.model = message.model
    completion.usage = _usage(message.usage)
    if on_usage is not None:
        on_usage(completion.usage)


def _usage(usage: Any) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens or 0,
        "output_tokens": usage.output_tokens or 0,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens or 0,
        "cache_read_input_tokens": usage.cache_read_input_tokens or 0,
    }


def describe(exc: BaseException) -> dict[str, str]:
    """The job error for a call that failed for good: Claude's error type and status with a
    fixed summary, never Claude's own message (the worker logs that). A 429 with neither a
    retry-after nor `x-should-retry: true` is a spend limit; one that asked to be retried was a
    rate limit that held through every retry."""
    if isinstance(exc, anthropic.RateLimitError) and retry_after(exc) is None \
            and should_retry(exc) is not True:
        return {"type": "spend_limit", "message": "Claude answered 429 without retry-after "
                "(a spend or usage limit, not a rate limit)"}
    return caller_error(error_type(exc), getattr(exc, "status_code", None))
