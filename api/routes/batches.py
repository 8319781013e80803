"""`/api/batches`: many jobs at once — the nightly drought reports and bulk submissions — with
progress, a progress stream, cancellation and the drought report."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from api import openapi, queue_caps, sse
from api.access import owned_batch
from api.auth import Principal
from api.body import read_object
from api.deps import BackendDep, PrincipalDep, StreamPrincipalDep
from api.streams import StreamSlots
from api.submission import admit_batch
from shared import batches, budgets, events, keys, reports
from shared.batches import BatchRequest, BatchStore, Owner
from shared.celery_app import CANCEL_UPSTREAM_BATCH, SUBMIT_UPSTREAM_BATCH
from shared.errors import JobNotFound
from shared.validation import parse

router = APIRouter(prefix="/api/batches", tags=["batches"])
BATCH_BODY = openapi.body(BatchRequest)


def store_of(backend: BackendDep) -> BatchStore:
    return BatchStore(backend.redis, backend.store)


async def load(backend: BackendDep, batch_id: str, caller: Principal) -> dict[str, Any]:
    return await owned_batch(store_of(backend), batch_id, caller)


@router.post("", status_code=202, openapi_extra=BATCH_BODY)
async def create_batch(request: Request, backend: BackendDep,
                       caller: PrincipalDep) -> JSONResponse:
    """Up to 10 000 job bodies; `mode` `queue` (the batch queue, through the limiter) or
    `anthropic_batch` (one Anthropic Message Batch, half price). Every job counts against the
    caller's per-tenant quotas, queue cap and budgets, as if sent alone; all run at batch
    priority."""
    settings = backend.settings
    body = parse(BatchRequest, await read_object(request, settings.max_batch_body_bytes))
    batch_id = "b" + secrets.token_hex(10)
    windows = budgets.windows(settings, caller.tenant, caller.subject, caller.budget_usd_per_day)
    owner = Owner(caller.tenant, caller.subject or "", tuple(w.key for w in windows))
    records = batches.plan(body, settings, batch_id, owner)
    await admit_batch(backend, caller, records, windows)
    celery = backend.celery
    await batches.start(store_of(backend), settings, body, batch_id,
                        lambda bid: celery.send_task(SUBMIT_UPSTREAM_BATCH, args=[bid],
                                                     queue="batch"), owner, records)
    await queue_caps.note(backend.store, caller.tenant, [r["id"] for r in records],
                          backend.store.ttl)
    snapshot = await load(backend, batch_id, caller)
    return JSONResponse(snapshot, status_code=202, headers={"Location": snapshot["links"]["self"]})


@router.get("/{batch_id}")
async def get_batch(batch_id: str, backend: BackendDep, caller: PrincipalDep) -> dict[str, Any]:
    return await load(backend, batch_id, caller)


@router.delete("/{batch_id}", status_code=202)
async def cancel_batch(batch_id: str, backend: BackendDep,
                       caller: PrincipalDep) -> dict[str, Any]:
    """Cancels every job not yet finished (an Anthropic batch is cancelled upstream)."""
    snapshot = await load(backend, batch_id, caller)
    store = store_of(backend)
    await store.set(batch_id, cancel="1")
    if snapshot["mode"] == "anthropic_batch":
        await asyncio.to_thread(backend.celery.send_task, CANCEL_UPSTREAM_BATCH, args=[batch_id],
                                queue="batch")
    else:
        for job_id in await store.job_ids(batch_id):
            if await backend.store.cancel(job_id) == "running":
                await backend.redis.publish(keys.cancel_channel(), job_id)
    return await load(backend, batch_id, caller)


@router.get("/{batch_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def batch_events(request: Request, batch_id: str, backend: BackendDep,
                       caller: StreamPrincipalDep) -> StreamingResponse:
    """`progress` events whenever the counts change, then `done`. A browser's EventSource
    may pass its token as `?access_token=`."""
    await load(backend, batch_id, caller)
    slots: StreamSlots = request.app.state.streams
    slots.take(caller.tenant)
    return StreamingResponse(slots.hold(caller.tenant, _progress(backend, batch_id, caller)),
                             media_type="text/event-stream", headers=sse.HEADERS)


async def _progress(backend: BackendDep, batch_id: str,
                    caller: Principal) -> AsyncIterator[bytes]:
    last, n, quiet = None, 0, 0.0
    while True:
        try:
            snapshot = await load(backend, batch_id, caller)
        except JobNotFound:
            yield events.frame(None, events.ERROR, {
                "type": "not_found", "message": "the batch's record expired or was deleted"})
            return
        state = (snapshot["counts"], snapshot["status"])
        if state != last:
            n, last, quiet = n + 1, state, 0.0
            kind = events.DONE if snapshot["status"] != "running" else "progress"
            yield events.frame(n, kind, snapshot)
            if kind == events.DONE:
                return
        elif quiet >= backend.settings.sse_keepalive_seconds:
            quiet = 0.0
            yield sse.KEEPALIVE
        await asyncio.sleep(1.0)
        quiet += 1.0


@router.get("/{batch_id}/report", response_model=None)
async def batch_report(batch_id: str, backend: BackendDep, caller: PrincipalDep,
                       format: Literal["json", "md", "csv"] = "json") -> Response:
    """The drought report: regions ranked by risk and confidence; failures with reasons."""
    snapshot = await load(backend, batch_id, caller)
    records = await backend.store.get_all(await store_of(backend).job_ids(batch_id))
    rows = reports.ranked([r for r in records if r])
    if format == "md":
        return PlainTextResponse(reports.markdown(snapshot["name"], rows),
                                 media_type="text/markdown")
    if format == "csv":
        return PlainTextResponse(reports.to_csv(rows), media_type="text/csv")
    return JSONResponse(rows)
