"""Turning a validated job request into a stored, queued job — shared by every route that
starts work (`/api/jobs`, `/api/chat`, batches). Identical cacheable requests are answered from
the response cache, or follow the job already answering them (single-flight)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from celery import Celery
from redis.asyncio import Redis

from api import quotas
from shared.cache import ResponseCache
from shared.celery_app import RUN_JOB
from shared.errors import ServiceUnavailable
from shared.jobspec import job_fields
from shared.jobstore import JobStore, Record, view
from shared.limiter import Limiter
from shared.metrics import Tally
from shared.schemas import JobRequest
from shared.settings import Settings


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
    cached: dict[str, Any] | None = None  # the cached answer, on a cache hit (then `job` holds
    # only the id of the job that produced it)


def cacheable(request: JobRequest, settings: Settings) -> bool:
    return request.cache and settings.redis_enabled and settings.cache_ttl_minutes > 0


async def submit(request: JobRequest, backend: Backend, client: str = "") -> Submitted:
    settings = backend.settings
    fields = job_fields(request, settings, client)
    use_cache = cacheable(request, settings)
    if not use_cache:
        fields["cache_key"] = ""
    elif (found := await _from_cache(backend, fields["cache_key"], fields["id"])) is not None:
        return found
    await quotas.charge(backend.limiter, settings, client,
                        len(fields["input"]) // 4 + int(fields["max_tokens"]))
    created, record = await backend.store.create(fields)
    if created:
        enqueue(backend.celery, fields["id"], fields["priority"])
        backend.tally.submitted(fields["type"], cache_miss=use_cache)
    return Submitted(view(record), created)


async def _from_cache(backend: Backend, key: str, job_id: str) -> Submitted | None:
    """A cached answer, or the job of an identical request in flight; None: we lead."""
    hit, leader = await backend.cache.lookup(key, job_id)
    backend.tally.add("cache", "lookups")
    if hit is not None:
        return Submitted({"id": hit["job_id"]}, False, hit)
    if leader == job_id:
        return None
    record = await _leaders_job(backend, leader)
    if record is None:  # the leader never created its job (it died) or it expired: lead
        await backend.cache.abandon(key)
        return None
    return Submitted(view(record), False)


async def _leaders_job(backend: Backend, job_id: str, patience: float = 2.0) -> Record | None:
    """The leader records its job just after taking the flight: give it a moment."""
    for _ in range(int(patience / 0.05)):
        if (record := await backend.store.get(job_id)) is not None:
            return record
        await asyncio.sleep(0.05)
    return None


def enqueue(celery: Celery, job_id: str, queue: str) -> None:
    """Send the task (its body is only the job id) on the job's queue. Called inline: a
    publish is one quick Redis write, cheaper than a hop to a thread and back."""
    try:
        celery.send_task(RUN_JOB, args=[job_id], queue=queue)
    except Exception as exc:
        raise ServiceUnavailable(f"could not enqueue the job: {exc}") from exc
