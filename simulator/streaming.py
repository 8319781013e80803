"""Server-sent events exactly as `POST /v1/messages` with `stream: true` sends them.

Hundreds of streams run at once in one process, so the body is written by a small ASGI
response rather than a generator per token: every frame prefix is pre-encoded, tokens are
released on a schedule (first after the time-to-first-token, then at tokens_per_second) and
written once per tick, and a single pending `receive()` tells when the client went away.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from simulator.faults import Fault
from simulator.replies import Reply
from simulator.wire import dumps

_TEXT_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,' \
    b'"delta":{"type":"text_delta","text":'
_JSON_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,' \
    b'"delta":{"type":"input_json_delta","partial_json":'
_DELTA_END = b"}}\n\n"
_PING = b'event: ping\ndata: {"type":"ping"}\n\n'
_BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
DEFAULT_CHUNK_SECONDS = 0.02


class DropConnection(Exception):
    """Raised inside a response to make uvicorn close the socket mid-body (a `drop` fault)."""


def frame(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n"


@dataclass(frozen=True, slots=True)
class Pace:
    """Stream timing: seconds to the first token, token rate, minimum spacing of writes."""

    ttft: float
    tokens_per_second: float
    chunk_seconds: float


# Called once per stream with (outcome, output tokens actually sent, seconds it lasted).
FinishCallback = Callable[[str, int, float], None]
_DELTA_USAGE_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


class MessageStream(Response):
    """The SSE body for one planned reply; reports how it ended through `on_finish`."""

    media_type = "text/event-stream"

    def __init__(
        self,
        reply: Reply,
        start_message: dict[str, Any],
        final_usage: dict[str, Any],
        pace: Pace,
        fault: Fault | None,
        on_open: Callable[[], None],
        on_finish: FinishCallback,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", **(headers or {})})
        self.reply = reply
        self.pace = pace
        self.fault = fault
        self.on_open = on_open
        self.on_finish = on_finish
        self.sent = 0
        self.head = (
            frame("message_start", {"type": "message_start", "message": start_message})
            + frame(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": reply.empty_block()},
            )
            + _PING
        )
        self.tail = _BLOCK_STOP + frame("message_delta", _message_delta(reply, final_usage))
        self.tail += _MESSAGE_STOP
        self.delta_prefix = _JSON_DELTA if reply.block_type == "tool_use" else _TEXT_DELTA

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.on_open()
        started = asyncio.get_running_loop().time()
        gone = asyncio.ensure_future(receive())
        outcome = "aborted"
        try:
            outcome = await self._body(send, lambda: _disconnected(gone))
        except DropConnection:
            outcome = "dropped"
            raise
        finally:
            if not gone.done():
                gone.cancel()
            self.on_finish(outcome, self.sent, asyncio.get_running_loop().time() - started)

    async def _body(self, send: Send, is_gone: Callable[[], bool]) -> str:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await _write(send, self.head)
        await asyncio.sleep(self.pace.ttft)
        total = len(self.reply.chunks)
        limit = total if self.fault is None else min(total, self.fault.after_tokens)
        if not await self._trickle(send, is_gone, limit):
            return "aborted"
        if self.fault is not None and self.fault.kind == "drop":
            raise DropConnection()
        if self.fault is not None:
            await _write(send, self._error_frame(self.fault), more=False)
            return "errored"
        await _write(send, self.tail, more=False)
        return "completed"

    async def _trickle(self, send: Send, is_gone: Callable[[], bool], limit: int) -> bool:
        """Write chunks as they fall due; False if the client disconnected on the way."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.pace.tokens_per_second
        start = last_write = loop.time()
        while self.sent < limit:
            if is_gone():
                return False
            now = loop.time()
            due = min(limit, int((now - start) / interval) + 1)
            if due > self.sent:
                await _write(send, self._delta(self.reply.chunks[self.sent : due]))
                self.sent, last_write = due, now
            if self.sent < limit:
                next_due = start + self.sent * interval
                wake = max(next_due, last_write + self.pace.chunk_seconds)
                await asyncio.sleep(max(0.0, wake - loop.time()))
        return not is_gone()

    def _delta(self, chunks: list[str]) -> bytes:
        """One `content_block_delta` event per token, however many fall due in one write: the
        API streams small deltas, and a client that loses the stream midway can then count what
        it was sent (`output_tokens_cut` in the ledger is exactly the deltas it received)."""
        prefix = self.delta_prefix
        return b"".join(prefix + json.dumps(chunk).encode() + _DELTA_END for chunk in chunks)

    def _error_frame(self, fault: Fault) -> bytes:
        error = {"type": fault.resolved_type(), "message": fault.resolved_message()}
        return frame("error", {"type": "error", "error": error})


def _message_delta(reply: Reply, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence},
        "usage": {
            **{k: usage[k] for k in _DELTA_USAGE_KEYS if k in usage},
            "output_tokens": reply.output_tokens,
        },
    }


def _disconnected(pending: asyncio.Future[Message]) -> bool:
    return pending.done() and (
        pending.cancelled() or pending.exception() is not None
        or pending.result().get("type") == "http.disconnect"
    )


async def _write(send: Send, body: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": more})


class TruncatedResponse(Response):
    """A non-streaming answer cut off halfway, then the socket closed (a `drop` fault)."""

    def __init__(self, body: bytes, headers: dict[str, str] | None = None) -> None:
        super().__init__(body, 200, headers, "application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await _write(send, bytes(self.body[: len(self.body) // 2]))
        raise DropConnection()
