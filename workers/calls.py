"""Calling Claude for one job: wait for capacity, stream, settle the buckets, and retry what is
worth retrying — exactly one retry layer (the SDK's own retries are off)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import anthropic
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from shared import jobtypes
from shared.jobtypes import InvalidModelOutput
from shared.limiter import Limiter
from shared.record import Record, Refusal
from shared.settings import Settings
from workers import admission, claude
from workers.coalesce import Coalescer
from workers.context import Cancelled, Context, LostJob
from workers.fieldstream import FieldStreamer

log = logging.getLogger("sidecar.worker")


@dataclass
class Attempts:
    """The state of a job's calls, carried across attempts of one delivery."""

    completion: claude.Completion = field(default_factory=claude.Completion)
    usage: dict[str, int] = field(default_factory=dict)
    count: int = 0
    result: dict[str, Any] | None = None
    invalid_outputs: int = 0

    def settle(self) -> None:
        """Add the last call's usage to the total (every attempt is billed)."""
        self.usage = add_usage(self.usage, self.completion.usage)


def add_usage(*usages: Mapping[str, int]) -> dict[str, int]:
    total: dict[str, int] = {}
    for usage in usages:
        for name, value in usage.items():
            total[name] = total.get(name, 0) + int(value)
    return total


def build_request(record: Record, settings: Settings) -> dict[str, Any]:
    """The `messages.create` arguments for a stored job."""
    job_type = jobtypes.get(record["type"])
    if job_type is None:
        raise ValueError(f"unknown job type {record['type']!r}")
    request = job_type.build_request(job_type.validate_input(json.loads(record["input"])))
    request["model"] = record["model"]
    request["max_tokens"] = int(record["max_tokens"])
    if record.get("temperature"):
        # The SDK no longer names sampling parameters; models that take one read it from the body.
        request["extra_body"] = {"temperature": float(record["temperature"])}
    return request


def _wait(ctx: Context) -> Any:
    """Backoff: the upstream's retry-after when it gave one, else exponential with full jitter."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = claude.retry_after(exc) if exc else None
        if asked is not None:
            return min(asked, ctx.retry_cap)
        return random.uniform(0, min(ctx.retry_cap, ctx.retry_base * 2 ** state.attempt_number))

    return wait


def call_id(job_id: str) -> str:
    return f"{job_id}:{random.getrandbits(48):012x}"


async def _call(ctx: Context, job: Job, state: Attempts, coalescer: Coalescer) -> None:
    """One upstream call: capacity first, then the stream; the buckets are settled either way."""
    reservation, job.reservation = job.reservation, None
    if reservation is None and ctx.settings.limiter_enabled:
        reservation = await admission.reserve(ctx.limiter, ctx.settings, job.record,
                                              job.request, call_id(job.id),
                                              await job.input_tokens(ctx))
    if reservation is not None and reservation.waited:
        ctx.metrics.waited(job.record["model"], reservation.waited)
    number, job.first_attempt = job.first_attempt, 0  # the claim began the first attempt
    job.attempt_text.clear()
    state.completion = claude.Completion()
    try:  # from here on the reservation is settled whatever happens
        if not number:
            number = await ctx.store.begin_attempt(job.id, job.owner)
        if number < 0:
            raise LostJob(job.id)
        state.count = number
        await claude.stream_once(ctx.client, job.request, coalescer.add, state.completion,
                                 on_headers=job.learn, on_json=_field_tokens(job, coalescer),
                                 on_usage=lambda usage: job.note_usage(ctx, state, usage))
        state.result = _read(job, state)
    except anthropic.APIStatusError as exc:
        await _note_upstream_error(ctx, job, exc)
        raise
    finally:
        try:
            await coalescer.flush()  # raises when the text could not be delivered
        finally:
            state.completion.count_cut_short()
            state.settle()
            if reservation is not None:
                await admission.settle(ctx.limiter, reservation, state.completion.usage)
    if coalescer.refused:
        raise Cancelled(job.id) if coalescer.refused == Refusal.CANCELLED else LostJob(job.id)


def _field_tokens(job: Job, coalescer: Coalescer) -> Callable[[str], None] | None:
    """For a tool-call answer, stream the job type's chosen field (the summary) as tokens."""
    name = job.job_type.streamed_field
    if name is None:
        return None
    streamer = FieldStreamer(name)

    def feed(partial: str) -> None:
        if text := streamer.feed(partial):
            coalescer.add(text)
        else:
            coalescer.count()

    return feed


def _read(job: Job, state: Attempts) -> dict[str, Any]:
    try:
        return job.job_type.read_result(state.completion.full_text, state.completion.tool_inputs)
    except InvalidModelOutput:
        state.invalid_outputs += 1
        raise


async def _note_upstream_error(ctx: Context, job: Job, exc: anthropic.APIStatusError) -> None:
    """A 429 cools every worker down for its retry-after; the headers still teach limits."""
    model = job.record["model"]
    ctx.metrics.upstream_error(model, exc.status_code)
    await ctx.limiter.learn(model, exc.response.headers, every=0)
    if exc.status_code == 429:
        wait = claude.retry_after(exc)
        if wait is not None:
            await ctx.limiter.cooldown(model, wait)
        else:
            await ctx.limiter.count(model, "upstream_429")
    elif exc.status_code == 529:
        await ctx.limiter.count(model, "upstream_529")


@dataclass
class Job:
    """A claimed job as the call loop needs it."""

    id: str
    owner: str
    record: Record
    request: dict[str, Any]
    limiter: Limiter
    reservation: admission.Reservation | None = None  # taken before the claim, for attempt 1
    first_attempt: int = 0  # the attempt the claim began, not yet used
    counted: int | None = None  # the request's input tokens, once known
    claimed_at_once: bool = False  # capacity and the claim took one round trip (see runner)
    pending: set[asyncio.Task[Any]] = field(default_factory=set)  # work set aside (`_aside`)
    acked: int = 0  # the highest event id an append was answered with
    attempt_text: list[str] = field(default_factory=list)  # appended in the current attempt

    async def input_tokens(self, ctx: Context) -> int:
        if self.counted is None:
            stored = self.record.get("input_tokens_estimate")  # made by the API at submission
            self.counted = await admission.input_tokens(
                ctx.client, self.request, ctx.settings.count_tokens_above,
                int(stored) if stored else None)
        return self.counted

    @property
    def job_type(self) -> jobtypes.JobType:
        found = jobtypes.get(self.record["type"])
        if found is None:
            raise ValueError(f"unknown job type {self.record['type']!r}")
        return found

    def learn(self, headers: Mapping[str, str]) -> None:
        """Teach the limiter from an answer's headers without delaying its first token."""
        self._aside(self.limiter.learn(self.record["model"], dict(headers)))

    def note_usage(self, ctx: Context, state: Attempts,
                   started: Mapping[str, int] | None = None) -> None:
        """Record this delivery's usage so far in the job, off the stream's path (see
        `JobStore.note_usage`): its settled attempts, and the input of the one `started`."""
        input_side = {name: n for name, n in (started or {}).items() if name != "output_tokens"}
        self._aside(ctx.store.note_usage(self.id, self.owner, add_usage(state.usage, input_side),
                                         settled=started is None))

    def _aside(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)


async def call_with_retries(ctx: Context, job: Job, state: Attempts) -> None:
    """Exactly one retry layer (the SDK's own retries are off)."""

    async def emit(text: str, seq: int, pieces: int) -> int:  # the coalescer numbers chunks
        code = await _through_outages(
            lambda: ctx.store.append_token(job.id, job.owner, text, seq, job.acked, pieces))
        if code == Refusal.LOG_LOST:
            # Redis came back without the log's last frames (an `everysec` AOF, a failover):
            # the script fills the ids clients may have seen, sends a reset and then the
            # attempt's whole text, so no id is reused and no client keeps a stale text.
            log.warning("event log lost its tail in Redis; repairing", extra={"job_id": job.id})
            whole = "".join(job.attempt_text) + text
            code = await _through_outages(lambda: ctx.store.append_token(
                job.id, job.owner, text, seq, job.acked, pieces, whole))
        if code > 0:
            job.acked = max(job.acked, code)
            job.attempt_text.append(text)
        return code

    coalescer = Coalescer(emit, ctx.token_window)
    retrying = AsyncRetrying(
        stop=stop_after_attempt(ctx.settings.max_retries + 1),
        wait=_wait(ctx),
        retry=retry_if_exception(_retryable(state)),
        # A worker dying while it waits to try again leaves the failed attempts billed.
        before_sleep=lambda _: job.note_usage(ctx, state),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            await _call(ctx, job, state, coalescer)


# Appending tokens waits out a Redis restart this long, retrying every 50 ms to 1 s.
REDIS_PATIENCE_SECONDS = 30.0


async def _through_outages(append: Callable[[], Awaitable[int]]) -> int:
    """Append tokens even across a Redis restart: the stream from Claude goes on meanwhile,
    and a token that never reached the log would be lost to every client. (`seq` makes a
    resend after a lost reply harmless.) The retry machinery is built only after a failure:
    this runs for every chunk of every stream."""
    try:
        return await append()
    except (RedisConnectionError, RedisTimeoutError):
        pass
    retrying = AsyncRetrying(
        stop=stop_after_delay(REDIS_PATIENCE_SECONDS),
        wait=wait_exponential(multiplier=0.05, max=1.0),
        retry=retry_if_exception_type((RedisConnectionError, RedisTimeoutError)),
        reraise=True,
    )
    return int(await retrying(append))


def _retryable(state: Attempts) -> Callable[[BaseException], bool]:
    """Upstream trouble retries with backoff; an answer of the wrong shape is asked once more."""

    def check(exc: BaseException) -> bool:
        if isinstance(exc, InvalidModelOutput):
            return state.invalid_outputs < 2
        return claude.is_retryable(exc)

    return check
