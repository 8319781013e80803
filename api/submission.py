"""Turning a validated job request into a stored, queued job — shared by every route that
starts work (`/api/jobs`, `/api/chat`, batches). Identical cacheable requests are answered from
the response cache, or follow the job already answering them (single-flight)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from celery import Celery
from redis.asyncio import Redis
from redis.exceptions import RedisError

from api import quotas
from shared.cache import ResponseCache
from shared.errors import ServiceUnavailable
from shared.jobspec import hints, job_fields
from shared.jobstore import JobStore, view
from shared.limiter import Limiter
from shared.metrics import Tally
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
    cached: dict[str, Any] | None = None  # the cached answer, on a cache hit (then `job` holds
    # only the id of the job that produced it)


def cacheable(request: JobRequest, settings: Settings) -> bool:
    return request.cache and settings.redis_enabled and settings.cache_ttl_minutes > 0


async def submit(request: JobRequest, backend: Backend, client: str = "") -> Submitted:
    """Validate-then-store: one Redis round trip records the job and queues its task (see
    `scripts.SUBMIT`), or finds the cached answer or the identical job already running."""
    settings = backend.settings
    fields = job_fields(request, settings, client)
    use_cache = cacheable(request, settings)
    if not use_cache:
        fields["cache_key"] = ""
    # Per-key quotas count every request, a cached answer included.
    await quotas.charge(backend.limiter, settings, client,
                        len(fields["input"]) // 4 + int(fields["max_tokens"]))
    if use_cache:
        backend.tally.add("cache", "lookups")
    for _ in range(2):
        kind, found = await _submit_once(backend, fields, hints(fields, settings))
        if kind == "created":
            backend.tally.submitted(fields["type"], cache_miss=use_cache)
            return Submitted(view(fields), True)
        if kind == "exists":
            return Submitted(view(found), False)
        if kind == "hit":
            entry: dict[str, Any] = json.loads(found)
            return Submitted({"id": entry["job_id"]}, False, entry)
        if (leader := await backend.store.get(found)) is not None:
            return Submitted(view(leader), False)
        # The leader's job is gone (expired or deleted): free its flight and lead.
        await backend.cache.abandon(fields["cache_key"])
    raise ServiceUnavailable("could not submit the job: identical requests kept racing")


async def _submit_once(backend: Backend, fields: dict[str, str],
                       job_hints: Hints | None) -> tuple[str, Any]:
    message = run_job_message(fields["id"], fields["priority"], job_hints)
    try:
        return await backend.store.submit(fields, message, fields["cache_key"])
    except RedisError as exc:
        raise ServiceUnavailable(f"could not queue the job: {exc}") from exc
