"""What the simulated model answers: text, a forced tool call, or a structured JSON output.

A reply is planned in full before anything is sent, as a list of one-token chunks, so that the
streamed and non-streamed forms of the same request are identical and `max_tokens` is enforced
in one place (a forced tool call cut short is invalid JSON, as with the real API).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from simulator.textgen import json_chunks, request_digest, rng_for, text_reply
from simulator.toolgen import generate_instance
from simulator.validation import MessageRequest
from simulator.wire import new_id


@dataclass(slots=True)
class Reply:
    """A planned answer: `chunks` are the output tokens, in order, as they will be streamed."""

    block_type: str  # "text" or "tool_use"
    chunks: list[str]
    stop_reason: str
    stop_sequence: str | None = None
    tool_name: str | None = None
    tool_id: str | None = None
    tool_input: Any = None

    @property
    def output_tokens(self) -> int:
        return len(self.chunks)

    def content_block(self) -> dict[str, Any]:
        """The finished block, as a non-streaming answer carries it."""
        if self.block_type == "tool_use":
            return {
                "type": "tool_use",
                "id": self.tool_id,
                "name": self.tool_name,
                "input": self.tool_input,
            }
        return {"type": "text", "text": "".join(self.chunks)}

    def empty_block(self) -> dict[str, Any]:
        """The block as `content_block_start` announces it, before any delta."""
        if self.block_type == "tool_use":
            return {"type": "tool_use", "id": self.tool_id, "name": self.tool_name, "input": {}}
        return {"type": "text", "text": ""}


def forced_tool(request: MessageRequest) -> dict[str, Any] | None:
    """The tool a `tool_choice` of `tool` (by name) or `any` (the first) forces, if any."""
    choice, tools = request.tool_choice, request.tools or []
    if not choice or not tools:
        return None
    if choice["type"] == "tool":
        return next(t for t in tools if t.get("name") == choice.get("name"))
    if choice["type"] == "any":
        return tools[0]
    return None


def plan_reply(request: MessageRequest, seed: int, reply_tokens: int) -> Reply:
    digest = request_digest(
        seed,
        request.model,
        request.system,
        request.messages,
        request.max_tokens,
        request.temperature,
    )
    tool = forced_tool(request)
    if tool is not None:
        return _tool_reply(tool, digest, request.max_tokens)
    if request.output_schema is not None:
        return _json_reply(request.output_schema, digest, request.max_tokens)
    text = text_reply(digest, request.max_tokens, reply_tokens, request.stop_sequences or ())
    return Reply("text", text.tokens, text.stop_reason, text.stop_sequence)


def _tool_reply(tool: dict[str, Any], digest: bytes, max_tokens: int) -> Reply:
    value = generate_instance(tool.get("input_schema") or {}, rng_for(digest, "tool"))
    chunks = json_chunks(json.dumps(value))
    truncated = len(chunks) > max_tokens
    return Reply(
        "tool_use",
        chunks[:max_tokens],
        "max_tokens" if truncated else "tool_use",
        tool_name=str(tool.get("name")),
        tool_id=new_id("toolu_01"),
        tool_input={} if truncated else value,
    )


def _json_reply(schema: dict[str, Any], digest: bytes, max_tokens: int) -> Reply:
    value = generate_instance(schema, rng_for(digest, "json"))
    chunks = json_chunks(json.dumps(value))
    truncated = len(chunks) > max_tokens
    return Reply("text", chunks[:max_tokens], "max_tokens" if truncated else "end_turn")


def message_json(
    reply: Reply, model: str, message_id: str, usage: dict[str, Any]
) -> dict[str, Any]:
    """A complete `Message` object, as `POST /v1/messages` returns and batches embed."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [reply.content_block()],
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": {**usage, "output_tokens": reply.output_tokens},
    }
