"""Waiting for capacity before calling Claude, instead of collecting 429s.

The wait is an `await` on the worker's event loop (no spinning, no thread busy), bounded by the
job's queue deadline: a job that cannot get capacity in time fails with `rate_limited`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anthropic
from redis.asyncio.client import Pipeline

from shared.limiter import Limiter, configured_limits, counted_locally, estimate_input_tokens
from shared.record import Record, parse_time
from shared.settings import Settings
from shared.taskwire import Hints

MAX_NAP = 2.0


class RateLimitDeadline(Exception):
    """No capacity came before the job's queue deadline."""


class Defer(Exception):
    """Capacity is far off: hand the job back for later rather than hold a worker slot."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"defer {seconds:.1f}s")
        self.seconds = seconds


@dataclass
class Reservation:
    """What one call took from the buckets, to settle when its usage is known."""

    scope: str
    call_id: str
    tokens_in: int
    tokens_out: int
    waited: float = 0.0  # seconds spent waiting for capacity


def waiting_ttl(settings: Settings) -> float:
    """How long a waiter counts in the queue after its last nap: as long as a dead worker's
    calls in flight take to lapse, and a few naps at least, so a live waiter never drops out."""
    return max(3 * MAX_NAP, settings.job_lease_seconds)


def _deadline(record: Record, settings: Settings) -> float:
    created = parse_time(record["created_at"]).timestamp()
    return created + settings.queue_deadline(record.get("priority", "interactive"))


async def reserve(limiter: Limiter, settings: Settings, record: Record,
                  request: Mapping[str, Any], call_id: str, tokens_in: int,
                  defer_after: float | None = None) -> Reservation:
    """Take capacity for one call, waiting as long as the queue deadline allows — or, when the
    wait exceeds `defer_after`, raise Defer so the worker slot serves someone else meanwhile."""
    model = record["model"]
    reservation = Reservation(model, call_id, tokens_in, int(request["max_tokens"]))
    reserve_share = settings.interactive_reserve if record.get("priority") == "batch" else 0.0
    limits = configured_limits(settings, model)
    deadline = _deadline(record, settings)
    waiting, started = False, time.monotonic()
    try:
        while True:
            admission = await limiter.admit(model, call_id, reservation.tokens_in,
                                            reservation.tokens_out, reserve_share, limits,
                                            settings.max_in_flight)
            if admission.admitted:
                reservation.waited = time.monotonic() - started
                return reservation
            left = deadline - time.time()
            if admission.wait > left:
                raise RateLimitDeadline(
                    f"no {admission.reason} capacity for {model} within the "
                    f"{record.get('priority', 'interactive')} queue's deadline")
            if defer_after is not None and admission.wait > defer_after:
                raise Defer(admission.wait)
            waiting = True
            await limiter.wait_in_line(model, call_id, waiting_ttl(settings))
            # Jitter spreads the waiters so they do not all retry at the same instant.
            await asyncio.sleep(min(admission.wait, MAX_NAP) * random.uniform(1.0, 1.25))
    finally:
        if waiting:
            await limiter.leave_line(model, call_id)


def queue_reserve(pipe: Pipeline, limiter: Limiter, settings: Settings, hints: Hints,
                  call_id: str) -> Reservation:
    """Queue an attempt to take capacity at once for a job's first call, from the hints its
    message carried (no waiting: a job that finds none takes the patient path of `reserve`)."""
    share = settings.interactive_reserve if hints.priority == "batch" else 0.0
    limiter.queue_admit(pipe, hints.model, call_id, hints.input_tokens, hints.max_tokens, share,
                        configured_limits(settings, hints.model), settings.max_in_flight)
    return Reservation(hints.model, call_id, hints.input_tokens, hints.max_tokens)


async def settle(limiter: Limiter, reservation: Reservation, usage: Mapping[str, int]) -> None:
    used_in = usage.get("input_tokens", 0) + usage.get("cache_creation_input_tokens", 0)
    await limiter.settle(reservation.scope, reservation.call_id, reservation.tokens_in, used_in,
                         reservation.tokens_out, usage.get("output_tokens", 0))


async def input_tokens(client: anthropic.AsyncAnthropic, request: Mapping[str, Any],
                       exact_above: int, estimate: int | None = None) -> int:
    """What a call will use of the input-token bucket: counted locally (`estimate`, when the
    API already made it), or by Claude's count_tokens when the request is big enough for a
    local guess to matter."""
    if estimate is None:
        estimate = estimate_input_tokens(request)
    if counted_locally(estimate, exact_above):
        return estimate
    fields = ("model", "messages", "system", "tools", "tool_choice")
    try:
        counted = await client.messages.count_tokens(
            **{k: request[k] for k in fields if k in request})
    except anthropic.APIError:
        return estimate  # counting is an optimisation; never fail a job over it
    return int(counted.input_tokens)
