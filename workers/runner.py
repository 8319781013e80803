"""Running one job: claim it, call Claude (retrying what is worth retrying), stream its tokens
to the job's event log, and record the outcome. Plain async code, testable without Celery.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import anthropic
from redis.exceptions import RedisError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from shared import jobtypes, pricing
from shared.jobstore import JobStore, Record
from shared.settings import Settings
from workers import claude
from workers.coalesce import Coalescer

log = logging.getLogger("sidecar.worker")


class LostJob(Exception):
    """Another worker took the job over (our lease lapsed); stop without writing."""


class Cancelled(Exception):
    """The job's owner asked to cancel it."""


@dataclass
class Context:
    """What a worker process gives every job it runs; built once per process."""

    settings: Settings
    store: JobStore
    client: anthropic.AsyncAnthropic
    worker_name: str
    cancel_requested: set[str] = field(default_factory=set)
    token_window: float = 0.01
    retry_base: float = 0.5
    retry_cap: float = 30.0


@dataclass
class Attempts:
    """The state of a job's calls, carried across attempts of one delivery."""

    completion: claude.Completion = field(default_factory=claude.Completion)
    usage: dict[str, int] = field(default_factory=dict)
    count: int = 0

    def settle(self) -> None:
        """Add the last call's usage to the total (every attempt is billed)."""
        for name, value in self.completion.usage.items():
            self.usage[name] = self.usage.get(name, 0) + value


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


async def _call(ctx: Context, job_id: str, owner: str, request: dict[str, Any],
                state: Attempts, coalescer: Coalescer) -> None:
    number = await ctx.store.begin_attempt(job_id, owner)
    if number < 0:
        raise LostJob(job_id)
    state.count = number
    state.completion = claude.Completion()
    try:
        await claude.stream_once(ctx.client, request, coalescer.add, state.completion)
    finally:
        await coalescer.flush()
        state.settle()
    if coalescer.refused:
        raise Cancelled(job_id) if coalescer.refused == -2 else LostJob(job_id)


async def call_with_retries(ctx: Context, job_id: str, owner: str, request: dict[str, Any],
                            state: Attempts) -> None:
    """Exactly one retry layer (the SDK's own retries are off)."""

    async def emit(text: str) -> int:
        return await ctx.store.append_token(job_id, owner, text)

    coalescer = Coalescer(emit, ctx.token_window)
    retrying = AsyncRetrying(
        stop=stop_after_attempt(ctx.settings.max_retries + 1),
        wait=_wait(ctx),
        retry=retry_if_exception(claude.is_retryable),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            await _call(ctx, job_id, owner, request, state, coalescer)


def _outcome(record: Record, state: Attempts, status: str, error: dict[str, str] | None,
             settings: Settings) -> dict[str, str]:
    usage = state.usage or {"input_tokens": 0, "output_tokens": 0}
    cost = pricing.cost_usd(record["model"], usage, overrides=settings.model_prices)
    text = "".join(state.completion.text)
    fields = {
        "status": status,
        "usage": json.dumps(usage),
        "cost_usd": repr(cost),
        "result": json.dumps({"text": text}) if status != "failed" or text else "",
        "error": json.dumps(error) if error else "",
    }
    return fields


async def run_job(ctx: Context, job_id: str) -> str:
    """Run a delivered job to its end; returns what happened (for logs and tests)."""
    owner = f"{ctx.worker_name}:{random.getrandbits(48):012x}"
    settings = ctx.settings
    claim = await ctx.store.claim(
        job_id, owner, settings.job_lease_seconds, settings.job_max_attempts
    )
    if claim in ("missing", "finished", "busy"):
        return claim
    record = await ctx.store.get(job_id)
    assert record is not None
    state = Attempts()
    if claim == "cancel":
        return await _finish(ctx, job_id, owner, record, state, "cancelled", None)
    if claim == "exhausted":
        error = {"type": "worker_lost", "message": "the job's worker stopped too many times"}
        return await _finish(ctx, job_id, owner, record, state, "failed", error)
    return await _run_claimed(ctx, job_id, owner, record, state)


async def _run_claimed(ctx: Context, job_id: str, owner: str, record: Record,
                       state: Attempts) -> str:
    started = time.monotonic()
    log.info("job started", extra={"job_id": job_id, "type": record["type"],
                                   "model": record["model"], "worker": ctx.worker_name})
    try:
        request = build_request(record, ctx.settings)
        await call_with_retries(ctx, job_id, owner, request, state)
    except LostJob:
        log.warning("job lost to another worker", extra={"job_id": job_id})
        return "lost"
    except Cancelled:
        return await _finish(ctx, job_id, owner, record, state, "cancelled", None)
    except asyncio.CancelledError:
        if job_id not in ctx.cancel_requested:
            raise  # the worker is shutting down or lost the lease: leave the job to the lease
        return await _finish(ctx, job_id, owner, record, state, "cancelled", None)
    except anthropic.APIError as exc:
        error = {"type": claude.error_type(exc), "message": _message(exc)}
        return await _finish(ctx, job_id, owner, record, state, "failed", error)
    except (ValueError, KeyError) as exc:
        error = {"type": "invalid_job", "message": str(exc)}
        return await _finish(ctx, job_id, owner, record, state, "failed", error)
    except RedisError:
        raise  # the store is away: the message goes back and the lease brings the job back
    except Exception as exc:  # a bug must fail the job visibly, not loop it through leases
        log.exception("job crashed", extra={"job_id": job_id})
        error = {"type": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
        return await _finish(ctx, job_id, owner, record, state, "failed", error)
    finally:
        ctx.cancel_requested.discard(job_id)
        log.info("job ended", extra={"job_id": job_id, "attempts": state.count,
                                     "seconds": round(time.monotonic() - started, 3)})
    return await _finish(ctx, job_id, owner, record, state, "succeeded", None)


def _message(exc: anthropic.APIError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return str(exc)


async def _finish(ctx: Context, job_id: str, owner: str, record: Record, state: Attempts,
                  status: str, error: dict[str, str] | None) -> str:
    fields = _outcome(record, state, status, error, ctx.settings)
    fresh = await ctx.store.get(job_id) or record
    fields["attempts"] = fresh.get("attempts", "0")
    final = await ctx.store.finish(job_id, owner, fields)
    return status if final is not None else "lost"
