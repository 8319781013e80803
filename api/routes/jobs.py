"""`/api/jobs`: submit, read, follow and cancel jobs."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from api import openapi, sse
from api.body import read_object
from api.deps import (
    BackendDep,
    ClientKeyDep,
    DrainingDep,
    HubDep,
    RedisDep,
    SettingsDep,
    StoreDep,
)
from api.submission import submit
from shared import keys
from shared.errors import InvalidInput, JobNotFound
from shared.jobstore import JobStore, view
from shared.schemas import FINISHED, JobAccepted, JobRequest, JobView
from shared.validation import parse

router = APIRouter(prefix="/api/jobs", tags=["jobs"])

JOB_BODY = openapi.body(JobRequest)


async def load(store: JobStore, job_id: str) -> dict[str, Any]:
    record = await store.get(job_id) if len(job_id) <= 64 else None
    if record is None:
        raise JobNotFound(f"no job with id {job_id!r}")
    return view(record)


@router.post("", status_code=202, response_model=JobAccepted, openapi_extra=JOB_BODY,
             responses={200: {"model": JobAccepted, "description": "idempotent repeat"}})
async def create_job(request: Request, backend: BackendDep, client: ClientKeyDep) -> JSONResponse:
    body = parse(JobRequest, await read_object(request, backend.settings.max_body_bytes))
    submitted = await submit(body, backend, client)
    job = submitted.job if submitted.cached is None else await load(backend.store,
                                                                   submitted.job["id"])
    accepted = {"id": job["id"], "type": job["type"], "status": job["status"],
                "links": job["links"], "cached": submitted.cached is not None}
    return JSONResponse(accepted, status_code=202 if submitted.created else 200,
                        headers={"Location": job["links"]["self"]})


@router.get("/{job_id}", response_model=JobView)
async def get_job(job_id: str, store: StoreDep, client: ClientKeyDep) -> dict[str, Any]:
    return await load(store, job_id)


MAX_EVENT_ID = 2**53 - 1  # far past any job's events, and well inside Redis's 64-bit indexes


def _position(header: str | None, query: str | None) -> int:
    raw = header if header is not None else query
    if raw is None or raw == "":
        return 0
    # ASCII digits only: str.isdigit() also accepts '²', which int() refuses.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 16 and int(raw) <= MAX_EVENT_ID):
        raise InvalidInput(f"Last-Event-ID must be an integer from 0 to {MAX_EVENT_ID}",
                           field="Last-Event-ID")
    return int(raw)


@router.get("/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def job_events(
    job_id: str, store: StoreDep, hub: HubDep, settings: SettingsDep, client: ClientKeyDep,
    draining: DrainingDep,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[str | None, Query(alias="last_event_id")] = None,
) -> StreamingResponse:
    """Server-Sent Events: `status`, `token`, `reset`, then `done` with the job's JSON.
    Reconnect with `Last-Event-ID` (or `?last_event_id=`) to get exactly what followed it."""
    await load(store, job_id)
    stream = sse.job_events(store, hub, job_id, _position(last_event_id, after),
                            settings.sse_keepalive_seconds, draining)
    return StreamingResponse(stream, media_type="text/event-stream", headers=sse.HEADERS)


@router.delete("/{job_id}", status_code=202, response_model=JobView)
async def cancel_job(job_id: str, store: StoreDep, redis: RedisDep,
                     client: ClientKeyDep, response: Response) -> dict[str, Any]:
    """A queued job never runs; a running one is stopped (its upstream stream closed) and
    keeps its partial text."""
    await load(store, job_id)
    prior = await store.cancel(job_id)
    if prior == "running":
        await redis.publish(keys.cancel_channel(), job_id)
        for _ in range(40):  # its worker records the outcome within a second
            job = await load(store, job_id)
            if job["status"] in FINISHED:
                return job
            await asyncio.sleep(0.05)
    return await load(store, job_id)
