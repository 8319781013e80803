"""Turning a validated job request into a stored, queued job — shared by every route that
starts work (`/api/jobs`, `/api/chat`, batches)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from celery import Celery

from api import quotas
from api.body import parse
from shared import jobtypes, models
from shared.celery_app import RUN_JOB
from shared.errors import InvalidInput, ServiceUnavailable
from shared.jobstore import JobStore, new_job_id, utcnow, view
from shared.limiter import Limiter
from shared.schemas import JobRequest
from shared.settings import Settings


@dataclass
class Submitted:
    job: dict[str, Any]
    created: bool  # False when an idempotency key found an existing job


def job_fields(request: JobRequest, settings: Settings, scope: str) -> dict[str, str]:
    """Validate the request against its job type and model, and lay it out as a record."""
    job_type = jobtypes.get(request.type)
    if job_type is None:
        known = ", ".join(jobtypes.names())
        raise InvalidInput(f"type: unknown job type {request.type!r} (known: {known})",
                           field="type")
    data = parse(job_type.input_model, request.input, ("input",))
    try:
        model = models.resolve(request.model or settings.claude_model)
    except ValueError as exc:
        raise InvalidInput(f"model: {exc}", field="model") from None
    max_tokens = request.max_tokens or job_type.default_max_tokens
    limit = models.max_output_tokens(model)
    if max_tokens > limit:
        raise InvalidInput(f"max_tokens: {max_tokens} exceeds {model}'s limit of {limit}",
                           field="max_tokens")
    return {
        "id": new_job_id(request.idempotency_key, scope),
        "type": request.type,
        "status": "queued",
        "model": model,
        "priority": request.priority or job_type.default_priority,
        "input": data.model_dump_json(),
        "max_tokens": str(max_tokens),
        "temperature": "" if request.temperature is None else repr(request.temperature),
        "cache": "1" if request.cache else "0",
        "batch_id": request.batch_id or "",
        "created_at": utcnow(),
        "attempts": "0",
    }


async def submit(request: JobRequest, store: JobStore, celery: Celery, settings: Settings,
                 limiter: Limiter, client: str = "") -> Submitted:
    fields = job_fields(request, settings, client)
    await quotas.charge(limiter, settings, client,
                        len(fields["input"]) // 4 + int(fields["max_tokens"]))
    created = await store.create(fields)
    record = await store.get(fields["id"])
    if record is None:  # expired between the two calls: vanishingly rare, but never a 500
        raise ServiceUnavailable("job store is not keeping jobs; try again")
    if created:
        await enqueue(celery, fields["id"], fields["priority"])
    return Submitted(view(record), created)


async def enqueue(celery: Celery, job_id: str, queue: str) -> None:
    """Send the task (its body is only the job id) on the job's queue."""
    try:
        await asyncio.to_thread(celery.send_task, RUN_JOB, args=[job_id], queue=queue)
    except Exception as exc:
        raise ServiceUnavailable(f"could not enqueue the job: {exc}") from exc
