"""Turning a validated job request into a stored, queued job — shared by every route that
starts work (`/api/jobs`, `/api/chat`, batches). Identical cacheable requests are answered from
the response cache, or follow the job already answering them (single-flight)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from redis.asyncio import Redis
from redis.exceptions import RedisError

from api import mirror, queue_caps, quotas, sse
from api.auth import Principal
from api.hub import Hub
from shared import budgets, keys
from shared.cache import ResponseCache
from shared.errors import BudgetExceeded, ServiceUnavailable
from shared.jobspec import hints, job_fields
from shared.jobstore import Gate, JobStore
from shared.limiter import Limiter
from shared.metrics import Tally
from shared.record import Record, merged, utcnow, view
from shared.schemas import JobRequest
from shared.settings import Settings
from shared.taskwire import Hints, run_job_message


@dataclass
class Backend:
    """Everything that starting a job touches; built once by the app factory."""

    settings: Settings
    redis: Redis
    store: JobStore
    celery: Celery
    limiter: Limiter
    cache: ResponseCache
    tally: Tally


@dataclass
class Submitted:
    job: dict[str, Any]
    created: bool  # False when an idempotency key, the cache or a flight found an existing job
    cached: dict[str, Any] | None = None  # the cached answer, on a cache hit
    follower: Record | None = None  # the record, when the job follows another's run

    def events(self, backend: Backend, hub: Hub, draining: asyncio.Event | None = None,
               ) -> AsyncIterator[bytes]:
        """The job's event stream from its start (its leader's run, for a follower)."""
        source = self.follower["leader"] if self.follower else self.job["id"]
        return sse.job_events(backend.store, hub, source, 0,
                              backend.settings.sse_keepalive_seconds, draining, self.follower)


def utc() -> datetime:
    return datetime.now(UTC)


def cacheable(request: JobRequest, settings: Settings) -> bool:
    return request.cache and settings.redis_enabled and settings.cache_ttl_minutes > 0


async def submit(request: JobRequest, backend: Backend, caller: Principal) -> Submitted:
    """Validate-then-store: one Redis round trip records the job, reserves its worst-case cost
    and queues its task (see `scripts.SUBMIT`) — or finds the job already created by the same
    idempotency key, or the cached answer or the identical job already running, and then gives
    the caller a job of its own mirroring it: no caller ever learns another's job id."""
    settings = backend.settings
    fields = job_fields(request, settings, caller.tenant, caller.subject or "")
    use_cache = cacheable(request, settings)
    if not use_cache:
        fields["cache_key"] = ""
    # Per-tenant quotas count every request, a cached answer included.
    await quotas.charge(backend.limiter, settings, caller.tenant,
                        len(fields["input"]) // 4 + int(fields["max_tokens"]))
    if use_cache:
        backend.tally.add("cache", "lookups")
    found = budgets.windows(settings, caller.tenant, caller.subject, caller.budget_usd_per_day)
    gate = admission_gate(fields, settings, caller.tenant, found)
    for _ in range(3):
        kind, answer = await _submit_once(backend, fields, hints(fields, settings), gate)
        if kind == "created":
            backend.tally.submitted(fields["type"], cache_miss=use_cache)
            return Submitted(view(fields), True)
        if kind == "budget":
            raise _over_budget(found[int(answer) - 1], gate.cost)
        if kind == "full":
            if await queue_caps.prune(backend.store, caller.tenant if answer == "tenant" else None):
                continue  # some counted jobs had left the queue: try again
            raise queue_caps.refusal(answer, settings)
        if (found_job := await _found(backend, fields, kind, answer)) is not None:
            return found_job
    raise ServiceUnavailable("could not submit the job: identical requests kept racing")


async def _found(backend: Backend, fields: Record, kind: str,
                 answer: Any) -> Submitted | None:
    """The caller's job when the script found work already done or under way; None when the
    leader it found is gone (its flight is freed, so the next try leads)."""
    if kind == "exists":
        return Submitted(view(answer), False)
    if kind == "hit":
        return await _from_cache(backend, fields, json.loads(answer))
    if (leader := await backend.store.get(answer)) is not None:
        return await _follow(backend, fields, leader)
    await backend.cache.abandon(fields["cache_key"], answer)
    return None


async def admit_batch(backend: Backend, caller: Principal, records: list[Record],
                      found: list[budgets.Window]) -> None:
    """A batch passes what its jobs would pass one by one: the tenant's per-minute quotas
    (one request per job), the queue caps, and its budgets (the jobs' worst cases reserved
    together, or none of them)."""
    settings = backend.settings
    tokens = sum(int(r["input_tokens_estimate"]) + int(r["max_tokens"]) for r in records)
    await quotas.charge(backend.limiter, settings, caller.tenant, tokens, len(records))
    await queue_caps.room(backend.store, caller.tenant, len(records), settings)
    cost = sum(float(r["budget_reserved"]) for r in records)
    refused = await budgets.reserve(backend.redis, found, cost)
    if refused is not None:
        raise _over_budget(refused, cost)


def _over_budget(window: budgets.Window, cost: float) -> BudgetExceeded:
    return BudgetExceeded(
        f"the worst-case cost (${cost:.6f}) does not fit what is left of the {window.name}'s "
        f"budget (${window.limit:g}); it rolls over at {window.rolls_at:%Y-%m-%dT%H:%M}Z",
        retry_after=window.retry_after(utc()))


def admission_gate(fields: Record, settings: Settings, tenant: str,
                   found: list[budgets.Window]) -> Gate:
    """The job's queue caps and budget windows, its worst case noted in its record so the
    script that ends it can settle the reservation."""
    cost = budgets.worst_case_usd(fields, settings)
    fields["budget_keys"] = " ".join(w.key for w in found)
    fields["budget_reserved"] = repr(cost)
    return Gate((keys.queued(tenant), keys.queued()),
                (settings.max_queued_jobs_per_tenant, settings.max_queued_jobs),
                tuple(w.key for w in found), tuple(budgets.limits_args(found)), cost)


async def _from_cache(backend: Backend, fields: Record,
                      entry: dict[str, Any]) -> Submitted:
    """A cache hit: a job of the caller's own, finished now with the cached answer at no cost."""
    now = utcnow()
    text = str(entry.get("text", ""))
    record = merged(_unreserved(fields), {
        "status": "succeeded", "started_at": now, "first_token_at": now, "finished_at": now,
        "attempts": "0", "cached": "1", "model": str(entry.get("model") or fields["model"]),
        "result": json.dumps({"text": text}), "cost_usd": "0.0",
        "usage": json.dumps({"input_tokens": 0, "output_tokens": 0})})
    if not await backend.store.settled(record, text):
        existing = await backend.store.get(fields["id"])
        return Submitted(view(existing or record), False)
    return Submitted(view(record), False, entry)


async def _follow(backend: Backend, fields: Record,
                  leader: Record) -> Submitted:
    """A single-flight follower: a job of the caller's own that mirrors the leader's run (see
    `mirror`); cancelling it leaves the leader alone."""
    record = merged(_unreserved(fields), {"leader": leader["id"], "cached": "1"})
    if not await backend.store.create(record):
        existing = await backend.store.get(fields["id"])
        return Submitted(view(existing or record), False)
    return Submitted(mirror.view_of(record, leader), False, follower=record)


def _unreserved(fields: Record) -> Record:
    """The record without a budget reservation or a cache key of its own (it makes no call)."""
    unreserved = fields.copy()
    for name in ("budget_keys", "budget_reserved"):
        unreserved.pop(name, None)  # type: ignore[misc]
    unreserved["cache_key"] = ""
    return unreserved


async def _submit_once(backend: Backend, fields: Record,
                       job_hints: Hints | None, gate: Gate) -> tuple[str, Any]:
    message = run_job_message(fields["id"], fields["priority"], job_hints)
    try:
        return await backend.store.submit(fields, message, fields["cache_key"], gate)
    except RedisError as exc:
        # The cause goes to the log (see api.errors), never to the caller.
        raise ServiceUnavailable("could not queue the job: the job store is unavailable, "
                                 "try again shortly") from exc
