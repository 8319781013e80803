"""`/api/jobs`: submit, read, follow and cancel jobs."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from api import mirror, openapi, sse
from api.access import owned_job, owned_record
from api.body import read_object
from api.deps import (
    BackendDep,
    DrainingDep,
    HubDep,
    PrincipalDep,
    RedisDep,
    SettingsDep,
    StoreDep,
    StreamPrincipalDep,
)
from api.streams import StreamSlots
from api.submission import submit
from shared import keys
from shared.errors import InvalidInput
from shared.schemas import FINISHED, JobAccepted, JobRequest, JobView
from shared.validation import parse

router = APIRouter(prefix="/api/jobs", tags=["jobs"])

JOB_BODY = openapi.body(JobRequest)


@router.post("", status_code=202, response_model=JobAccepted, openapi_extra=JOB_BODY,
             responses={200: {"model": JobAccepted, "description": "idempotent repeat"}})
async def create_job(request: Request, backend: BackendDep, caller: PrincipalDep) -> JSONResponse:
    body = parse(JobRequest, await read_object(request, backend.settings.max_body_bytes))
    submitted = await submit(body, backend, caller)
    job = submitted.job
    accepted = {"id": job["id"], "type": job["type"], "status": job["status"],
                "links": job["links"], "cached": submitted.cached is not None}
    return JSONResponse(accepted, status_code=202 if submitted.created else 200,
                        headers={"Location": job["links"]["self"]})


@router.get("/{job_id}", response_model=JobView)
async def get_job(job_id: str, store: StoreDep, caller: PrincipalDep) -> dict[str, Any]:
    return await owned_job(store, job_id, caller)


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
    request: Request, job_id: str, store: StoreDep, hub: HubDep, settings: SettingsDep,
    caller: StreamPrincipalDep, draining: DrainingDep,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[str | None, Query(alias="last_event_id")] = None,
) -> StreamingResponse:
    """Server-Sent Events: `status`, `token`, `reset`, then `done` with the job's JSON.
    Reconnect with `Last-Event-ID` (or `?last_event_id=`) to get exactly what followed it.
    A browser's EventSource may pass its token as `?access_token=`."""
    record = await owned_record(store, job_id, caller)
    position = _position(last_event_id, after)
    source, follower = job_id, None
    if mirror.is_follower(record) and record["status"] not in FINISHED:
        source, follower = record["leader"], record
    slots: StreamSlots = request.app.state.streams
    slots.take(caller.tenant)
    stream = sse.job_events(store, hub, source, position, settings.sse_keepalive_seconds,
                            draining, follower)
    return StreamingResponse(slots.hold(caller.tenant, stream), media_type="text/event-stream",
                             headers=sse.HEADERS)


@router.delete("/{job_id}", status_code=202, response_model=JobView)
async def cancel_job(job_id: str, store: StoreDep, redis: RedisDep,
                     caller: PrincipalDep) -> dict[str, Any]:
    """A queued job never runs; a running one is stopped (its upstream stream closed) and
    keeps its partial text. A single-flight follower is cancelled alone: the run it mirrors
    goes on for its leader."""
    await owned_record(store, job_id, caller)
    prior = await store.cancel(job_id)
    if prior == "running":
        await redis.publish(keys.cancel_channel(), job_id)
        for _ in range(40):  # its worker records the outcome within a second
            job = await owned_job(store, job_id, caller)
            if job["status"] in FINISHED:
                return job
            await asyncio.sleep(0.05)
    return await owned_job(store, job_id, caller)
