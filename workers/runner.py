"""Running one job: claim it, call Claude (see `calls`), and record the outcome — whatever it
is — so that every job ends with a `done` event. Plain async code, testable without Celery.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time

from redis.exceptions import RedisError

from shared import keys, limiter_scripts, pricing, scripts
from shared.record import Record, as_str, claimed, record_of
from shared.schemas import FINISHED
from shared.settings import Settings
from shared.taskwire import Hints
from workers import admission
from workers.calls import (
    Attempts,
    Job,
    add_usage,
    build_request,
    call_id,
    call_with_retries,
)
from workers.context import Context, LostJob
from workers.failures import logged_failure

log = logging.getLogger("sidecar.worker")


def _outcome(record: Record, state: Attempts, status: str, error: dict[str, str] | None,
             settings: Settings) -> dict[str, str]:
    # With what earlier deliveries used before their worker died (see `scripts.CLAIM`).
    carried = json.loads(record.get("carried_usage") or "{}")
    usage = add_usage(carried, state.usage) or {"input_tokens": 0, "output_tokens": 0}
    cost = pricing.cost_usd(record["model"], usage, overrides=settings.model_prices)
    text = "".join(state.completion.text)
    result = state.result if status == "succeeded" and state.result else {"text": text}
    fields = {
        "status": status,
        "usage": json.dumps(usage),
        "cost_usd": repr(cost),
        "result": json.dumps(result) if status != "failed" or text else "",
        "error": json.dumps(error) if error else "",
    }
    return fields


async def run_job(ctx: Context, job_id: str, hints: Hints | None = None,
                  owner: str | None = None) -> str:
    """Run a delivered job to its end; returns what happened (for logs and tests).

    With the `hints` its message carried, taking capacity and claiming the job cost one round
    trip; without them, or when capacity is short, the record is read first and the job waits
    for capacity while still queued (or goes back to the queue for later)."""
    owner = owner or f"{ctx.worker_name}:{random.getrandbits(48):012x}"
    job = Job(job_id, owner, record_of({}), {}, ctx.limiter)
    taken: Taken | str | None = None
    if hints is not None:
        taken = await _claim_at_once(ctx, job, hints)
    if taken is None:
        taken = await _claim_patiently(ctx, job)
    if isinstance(taken, str):
        return taken
    (claim, job.first_attempt), early = taken
    if claim != "claimed":
        await _release(ctx, job)
    if claim in ("missing", "finished", "busy"):
        return claim
    state = Attempts()
    if claim == "cancel":
        return await _finish(ctx, job, state, "cancelled", None)
    if claim == "exhausted":
        error = {"type": "worker_lost", "message": "the job's worker stopped too many times"}
        return await _finish(ctx, job, state, "failed", error)
    if early is not None:
        return await _finish(ctx, job, state, *logged_failure(job.id, early))
    return await _run_claimed(ctx, job, state)


# What a claim found (outcome, attempt begun) and the error that must end the job at once, if
# any (an invalid record, or no capacity before the queue's deadline).
Taken = tuple[tuple[str, int], Exception | None]


async def prepare(ctx: Context) -> None:
    """Load the scripts the one-round-trip claim runs by digest alone (a fresh Redis knows
    none; after a restart, the first job takes the patient path, which loads them again)."""
    for script in (limiter_scripts.ADMIT, scripts.CLAIM):
        await ctx.store.redis.script_load(script)


async def _claim_at_once(ctx: Context, job: Job, hints: Hints) -> Taken | None:
    """Take capacity for the first call and claim the job in one round trip; None when there
    is no capacity right now (nothing was taken or claimed: the patient path takes over)."""
    settings = ctx.settings
    admitted: tuple[str, str] | None = None
    async with ctx.store.redis.pipeline(transaction=False) as pipe:
        if settings.limiter_enabled:
            job.reservation = admission.queue_reserve(pipe, ctx.limiter, settings, hints,
                                                      call_id(job.id))
            admitted = (keys.inflight(hints.model), job.reservation.call_id)
        ctx.store.queue_claim(pipe, job.id, job.owner, settings.job_lease_seconds,
                              settings.job_max_attempts, admitted=admitted)
        *admission_result, claim_result = await pipe.execute(raise_on_error=False)
    if job.reservation is not None and not (await ctx.limiter.admitted(
            hints.model, admission_result[0], call_id=job.reservation.call_id)).admitted:
        job.reservation = None
    if isinstance(claim_result, Exception) or as_str(claim_result[0]) == "unadmitted":
        await _release(ctx, job)  # a claim that did not run (NOSCRIPT) after an admission
        return None
    taken = claimed(claim_result)
    job.record, job.counted, job.claimed_at_once = taken.record, hints.input_tokens, True
    early: Exception | None = None
    if taken.outcome == "claimed":
        try:
            job.request = build_request(job.record, ctx.settings)
        except (ValueError, KeyError) as exc:
            early = exc
    return (taken.outcome, taken.attempt), early


async def _claim_patiently(ctx: Context, job: Job) -> Taken | str:
    """Read the record, wait for capacity while the job stays queued, then claim it; or say
    why not ('missing', 'finished', or 'deferred' when the job went back for later)."""
    record = await ctx.store.hold(job.id, job.owner, ctx.settings.job_lease_seconds)
    if record is None or record["status"] in FINISHED:
        return "missing" if record is None else "finished"
    job.record = record
    early: Exception | None = None
    try:
        job.request = build_request(record, ctx.settings)
        if ctx.settings.limiter_enabled and record["status"] == "queued":
            job.reservation = await _reserve_before_claim(ctx, job)
    except admission.Defer as defer:
        await ctx.store.defer(job.id, defer.seconds)
        return "deferred"
    except (admission.RateLimitDeadline, ValueError, KeyError) as exc:
        early = exc
    taken = await ctx.store.claim(job.id, job.owner, ctx.settings.job_lease_seconds,
                                  ctx.settings.job_max_attempts, begin=early is None)
    job.record = taken.record or record
    return (taken.outcome, taken.attempt), early


async def _reserve_before_claim(ctx: Context, job: Job) -> admission.Reservation:
    """Batch jobs facing a long wait go back to the queue instead of holding a slot."""
    defer_after = ctx.settings.defer_after_seconds if job.record["priority"] == "batch" else None
    return await admission.reserve(ctx.limiter, ctx.settings, job.record, job.request,
                                   call_id(job.id), await job.input_tokens(ctx), defer_after)


async def _release(ctx: Context, job: Job) -> None:
    if job.reservation is not None:
        await admission.settle(ctx.limiter, job.reservation, {})
        job.reservation = None


async def _run_claimed(ctx: Context, job: Job, state: Attempts) -> str:
    started = time.monotonic()
    record = job.record
    log.info("job started", extra={"job_id": job.id, "type": record["type"],
                                   "model": record["model"], "worker": ctx.worker_name,
                                   "claimed_at_once": job.claimed_at_once})
    try:
        await call_with_retries(ctx, job, state)
    except LostJob:
        log.warning("job lost to another worker", extra={"job_id": job.id})
        await _send_again_if_queued(ctx, job)
        return "lost"
    except asyncio.CancelledError:
        if job.id in ctx.handing_back:  # the worker is stopping: another one takes over now
            await ctx.store.note_usage(job.id, job.owner, state.usage)  # billed by the next
            await ctx.store.release(job.id, job.owner, job.record["priority"])
            return "handed back"
        if job.id not in ctx.cancel_requested:
            raise  # the lease was lost: leave the job to its new owner
        return await _finish(ctx, job, state, "cancelled", None)
    except RedisError:
        raise  # the store is away: the message goes back and the lease brings the job back
    except Exception as exc:
        return await _finish(ctx, job, state, *logged_failure(job.id, exc))
    finally:
        await _release(ctx, job)
        ctx.cancel_requested.discard(job.id)
        ctx.handing_back.discard(job.id)
        log.info("job ended", extra={"job_id": job.id, "attempts": state.count,
                                     "seconds": round(time.monotonic() - started, 3)})
    return await _finish(ctx, job, state, "succeeded", None)


async def _send_again_if_queued(ctx: Context, job: Job) -> None:
    """A job lost while no other worker holds it — its record went back to `queued` under us
    (Redis came back without the claim, after an `everysec` AOF restart or a failover) — would
    wait forever once this delivery's message is acknowledged: send it again. When the reaper
    requeued it, this is a second message, which the claim makes harmless."""
    record = await ctx.store.get(job.id)
    if record is not None and record["status"] == "queued":
        await ctx.store.send_again(job.id, record["priority"])


async def _finish(ctx: Context, job: Job, state: Attempts, status: str,
                  error: dict[str, str] | None) -> str:
    fields = _outcome(job.record, state, status, error, ctx.settings)
    # The last attempt's number is the job's count (attempts are numbered across deliveries).
    fields["attempts"] = str(state.count) if state.count else job.record.get("attempts", "0")
    final = await ctx.store.finish(job.id, job.owner, fields, _answer(job, fields, status),
                                   ctx.cache.ttl)
    if final is None:
        return "lost"
    ctx.tally.job_ended(final)
    ctx.metrics.job_ended(final)
    return status


def _answer(job: Job, fields: dict[str, str], status: str) -> dict[str, object] | None:
    """What identical requests are answered with from the cache, for a succeeded leader (the
    script that ends the job stores it and frees the flight in one step)."""
    if status != "succeeded" or not job.record.get("cache_key"):
        return None
    result = json.loads(fields["result"] or "{}")
    return {"text": result.get("text", ""), "model": job.record["model"],
            "usage": json.loads(fields["usage"]), "cost_usd": float(fields["cost_usd"]),
            "job_id": job.id}
