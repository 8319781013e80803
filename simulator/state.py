"""The simulator's whole mutable state, owned by one app instance.

Keeping it in one object (rather than module globals) lets tests run several simulators with
different limits side by side, and makes `POST /_sim/reset` a single, complete operation.
"""

from __future__ import annotations

from typing import Any

from simulator.batches import BatchStore
from simulator.caching import PromptCache
from simulator.config import SimConfig
from simulator.faults import FaultInjector
from simulator.limits import RateLimiter
from simulator.prompt import prompt_pieces
from simulator.replies import message_json, plan_reply
from simulator.stats import Stats
from simulator.validation import parse_message_request
from simulator.wire import ApiError, new_id, new_request_id


class SimState:
    def __init__(self, config: SimConfig) -> None:
        self.initial_config = config
        self.config = config
        self.stats = Stats()
        self.limiter = RateLimiter(config.rpm, config.itpm, config.otpm)
        self.faults = FaultInjector(config.seed)
        self.cache = PromptCache(config.cache_min_tokens)
        self.batches = BatchStore(self.answer_batch_entry, self.record_batch_result)

    def update_config(self, patch: dict[str, Any]) -> SimConfig:
        """Apply a runtime patch; limits resize their buckets without refilling them."""
        self.apply(self.config.patched(patch))
        return self.config

    def apply(self, config: SimConfig) -> None:
        if config.seed != self.config.seed:
            self.faults.rng.seed(config.seed)
        self.config = config
        self.limiter.configure(config.rpm, config.itpm, config.otpm)
        self.cache.min_tokens = config.cache_min_tokens

    def reset(self, restore_config: bool = False) -> None:
        """Zero stats, drop faults, caches and batches, refill every bucket."""
        if restore_config:
            self.apply(self.initial_config)
        self.stats.reset()
        self.faults.clear(self.config.seed)
        self.cache.clear()
        self.batches.clear()
        self.limiter.reset()

    def answer_batch_entry(self, params: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """One batch entry's result, planned exactly as the synchronous call would be."""
        try:
            if isinstance(params, dict) and params.get("stream"):
                raise ApiError(400, "stream: Streaming is not supported in Message Batches")
            request = parse_message_request(params)
        except ApiError as err:
            error = {"type": err.error_type, "message": err.message}
            body = {"type": "error", "error": error, "request_id": new_request_id()}
            return {"type": "errored", "error": body}, None
        reply = plan_reply(request, self.config.seed, self.config.reply_tokens)
        # Message Batches honour prompt caching too (best effort upstream; always here).
        pieces = prompt_pieces(request.tools or [], request.system, request.messages,
                               request.cache_control)
        account = self.cache.account(request.model, pieces)
        self.cache.commit(account)
        usage = {**account.usage(), "service_tier": "batch"}
        message = message_json(reply, request.model, new_id("msg_01"), usage)
        return {"type": "succeeded", "message": message}, message["usage"]

    def record_batch_result(self, kind: str, usage: dict[str, Any] | None) -> None:
        self.stats.batch_requests[kind] = self.stats.batch_requests.get(kind, 0) + 1
        if usage is not None:
            self.stats.add_usage(usage, batch=True)

    def stats_snapshot(self) -> dict[str, Any]:
        self.batches.refresh_all()  # batches end lazily; make their tokens count now
        return self.stats.snapshot(self.faults.injected, self.faults.random_counts)
