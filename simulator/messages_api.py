"""`POST /v1/messages` and `POST /v1/messages/count_tokens`.

The order of checks mirrors what a client can observe from the API: validation (400) first,
then injected faults, then rate limits (429), and only an admitted request warms the cache,
spends tokens and gets an answer. An answer is billed (the stats' ledger) once it begins: its
input then, its output as it is generated; an error status bills nothing.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from simulator.caching import CacheAccount
from simulator.endpoint import read_json
from simulator.faults import Fault
from simulator.limits import Refusal
from simulator.prompt import prompt_pieces, total_tokens
from simulator.replies import Reply, message_json, plan_reply
from simulator.state import SimState
from simulator.streaming import DEFAULT_CHUNK_SECONDS, MessageStream, Pace, TruncatedResponse
from simulator.validation import MessageRequest, parse_message_request
from simulator.wire import ApiError, dumps, json_response, new_id

MESSAGES_PATH = "/v1/messages"
COUNT_PATH = "/v1/messages/count_tokens"


class MessagesApi:
    def __init__(self, state: SimState) -> None:
        self.state = state

    async def count_tokens(self, request: Request, request_id: str) -> Response:
        parsed = parse_message_request(await read_json(request), count_only=True)
        await self.injected_fault(COUNT_PATH)
        pieces = prompt_pieces(parsed.tools or [], parsed.system, parsed.messages)
        return json_response({"input_tokens": total_tokens(pieces)})

    async def create(self, request: Request, request_id: str) -> Response:
        parsed = parse_message_request(await read_json(request))
        pieces = prompt_pieces(
            parsed.tools or [], parsed.system, parsed.messages, parsed.cache_control
        )
        account = self.state.cache.account(parsed.model, pieces)
        fault = await self.injected_fault(MESSAGES_PATH)
        config = self.state.config
        chance = self.state.faults.random_fault(config)
        if chance is not None and chance.kind == "status":
            raise chance.as_error()
        fault = fault or chance
        charge = self.admit(account, parsed.max_tokens)
        self.state.cache.commit(account)
        usage = {**account.usage(), "service_tier": "standard"}
        reply = plan_reply(parsed, config.seed, config.reply_tokens)
        if parsed.stream:
            return self.stream(parsed, reply, usage, charge, fault)
        return await self.answer(parsed, reply, usage, charge, fault)

    async def injected_fault(self, path: str) -> Fault | None:
        """Apply the next queued fault: raise status faults, sleep delays, return stream ones."""
        fault = self.state.faults.take(path)
        if fault is None:
            return None
        if fault.kind == "status":
            raise fault.as_error()
        if fault.kind == "delay_ms":
            await asyncio.sleep(fault.ms / 1000)
            return None
        return fault

    def admit(self, account: CacheAccount, max_tokens: int) -> int:
        """Charge the buckets (cache reads are free for ITPM) or refuse with a 429."""
        verdict = self.state.limiter.admit(account.total - account.read, max_tokens)
        if isinstance(verdict, Refusal):
            headers = {"retry-after": str(verdict.retry_after)}
            raise ApiError(429, verdict.message, "rate_limit_error", headers)
        return verdict

    async def answer(
        self, parsed: MessageRequest, reply: Reply, usage: dict[str, object], charge: int,
        fault: Fault | None,
    ) -> Response:
        await asyncio.sleep(self.state.config.ttft_ms / 1000)
        if fault is not None and fault.kind == "stream_error":
            self.state.limiter.settle(charge, 0)  # failed mid-generation: an error answer
            raise fault.as_error()
        self.state.stats.answered(usage)
        self.finish(charge, reply.output_tokens, completed=fault is None)
        message = message_json(reply, parsed.model, new_id("msg_01"), usage)
        if fault is not None:
            return TruncatedResponse(dumps(message))  # a `drop`: half a body, then EOF
        return json_response(message)

    def stream(
        self, parsed: MessageRequest, reply: Reply, usage: dict[str, object], charge: int,
        fault: Fault | None,
    ) -> Response:
        config = self.state.config
        pace = Pace(
            config.ttft_ms / 1000,
            config.tokens_per_second,
            config.stream_chunk_ms / 1000 if config.stream_chunk_ms else DEFAULT_CHUNK_SECONDS,
        )
        start = message_json(reply, parsed.model, new_id("msg_01"), usage)
        start.update(content=[], stop_reason=None, stop_sequence=None)
        start["usage"] = {**start["usage"], "output_tokens": 1}
        stats = self.state.stats

        def on_open() -> None:
            stats.stream_opened()
            stats.answered(usage)

        def on_finish(outcome: str, sent: int, seconds: float) -> None:
            stats.stream_closed(outcome, seconds)
            self.finish(charge, sent, completed=outcome == "completed")

        return MessageStream(reply, start, usage, pace, fault, on_open, on_finish)

    def finish(self, charge: int, output_tokens: int, *, completed: bool) -> None:
        self.state.limiter.settle(charge, output_tokens)
        self.state.stats.ended(output_tokens, completed=completed)
