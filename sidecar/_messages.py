"""The Messages API as `SidecarClient` speaks it: the request built from `chat`'s arguments, and
the text and token counts read back from a reply or a stream of events.

Checked here, before any call, so that a typo costs an exception instead of a paid request.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

from anthropic.types import (
    Message,
    RawContentBlockDeltaEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStreamEvent,
    TextBlock,
    TextDelta,
)

from shared import models
from sidecar.errors import ValidationError

USAGE_FIELDS = (
    "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
)
ROLES = ("user", "assistant")


def resolve_model(model: str) -> str:
    """The id sent to Claude for a `Model` member, an alias or a full id."""
    try:
        return models.resolve(model, strict=False)
    except ValueError as exc:
        raise ValidationError(str(exc), field="model") from None


def build_request(
    message: str,
    system: str | None,
    history: Sequence[Mapping[str, str]] | None,
    max_tokens: int,
    temperature: float | None,
    model_id: str,
) -> dict[str, Any]:
    """Keyword arguments for `messages.create`."""
    limit = models.max_output_tokens(model_id)
    if not 1 <= max_tokens <= limit:
        raise ValidationError(
            f"max_tokens must be between 1 and {limit} for {model_id}, got {max_tokens}",
            field="max_tokens",
        )
    request: dict[str, Any] = {
        "model": model_id,
        "max_tokens": max_tokens,
        "messages": _conversation(history, message),
    }
    if system:
        request["system"] = system
    if temperature is not None:  # this SDK's `create` has no temperature parameter
        request["extra_body"] = {"temperature": temperature}
    return request


def _conversation(
    history: Sequence[Mapping[str, str]] | None, message: str
) -> list[dict[str, str]]:
    """History plus the new user turn."""
    turns = []
    for index, turn in enumerate(history or ()):
        if turn.get("role") not in ROLES or not isinstance(turn.get("content"), str):
            raise ValidationError(
                f"history[{index}] must be {{'role': 'user' | 'assistant', 'content': str}}",
                field=f"history[{index}]",
            )
        turns.append({"role": turn["role"], "content": turn["content"]})
    if not isinstance(message, str) or not message.strip():
        raise ValidationError("message must be a non-empty string", field="message")
    return [*turns, {"role": "user", "content": message}]


def reply_text(reply: Message) -> str:
    return "".join(block.text for block in reply.content if isinstance(block, TextBlock))


def usage_of(source: Any) -> dict[str, int]:
    """The token counts an SDK usage object reports (missing or null ones left out)."""
    return {
        name: value for name in USAGE_FIELDS if (value := getattr(source, name, None)) is not None
    }


def full_usage(usage: Mapping[str, int]) -> dict[str, int]:
    """Every usage field, zero where nothing was reported, so callers can index blindly."""
    return {**dict.fromkeys(USAGE_FIELDS, 0), **usage}


def _absorb(event: RawMessageStreamEvent, usage: dict[str, int]) -> str:
    """Fold a stream event's token counts into `usage`; return its text ("" if it has none)."""
    if isinstance(event, RawContentBlockDeltaEvent) and isinstance(event.delta, TextDelta):
        return event.delta.text
    if isinstance(event, RawMessageStartEvent):
        usage.update(usage_of(event.message.usage))
    elif isinstance(event, RawMessageDeltaEvent):
        usage.update(usage_of(event.usage))
    return ""


def texts(events: Iterable[RawMessageStreamEvent], usage: dict[str, int]) -> Iterator[str]:
    """The text of a stream, piece by piece, filling `usage` on the way."""
    for event in events:
        if text := _absorb(event, usage):
            yield text


async def atexts(
    events: AsyncIterable[RawMessageStreamEvent], usage: dict[str, int]
) -> AsyncIterator[str]:
    """`texts` for an async stream."""
    async for event in events:
        if text := _absorb(event, usage):
            yield text
