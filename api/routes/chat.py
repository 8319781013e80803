"""The seed's chat surface, on top of the job pipeline (same limiter, retries, accounting):
`POST /api/chat` waits for its job; `POST /api/chat/stream` relays its events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field, StrictStr

from api import openapi, sse
from api.auth import Principal
from api.body import read_object
from api.deps import BackendDep, DrainingDep, HubDep, PrincipalDep
from api.streams import StreamSlots
from api.submission import Submitted, submit
from shared import events
from shared.metrics import TOKEN_FIELDS
from shared.schemas import HistoryItem, JobRequest, Strict
from shared.validation import parse

router = APIRouter(prefix="/api/chat", tags=["chat"])


class ChatRequest(Strict):
    """The original Sidecar's chat body."""

    message: StrictStr = Field(min_length=1, max_length=200_000)
    model: StrictStr | None = Field(None, max_length=100)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=1.0)
    system: StrictStr | None = Field(None, max_length=200_000)
    history: list[HistoryItem] = Field(default_factory=list, max_length=500)
    cache: bool = True


class ChatResponse(Strict):
    response: str
    model: str
    usage: dict[str, int]
    cost_usd: float
    cached: bool
    job_id: str


CHAT_BODY = openapi.body(ChatRequest)


def as_job(chat: ChatRequest) -> JobRequest:
    job_input: dict[str, Any] = {"message": chat.message}
    if chat.system is not None:
        job_input["system"] = chat.system
    if chat.history:
        job_input["history"] = [item.model_dump() for item in chat.history]
    return JobRequest(type="chat", input=job_input, model=chat.model, max_tokens=chat.max_tokens,
                      temperature=chat.temperature, priority="interactive", cache=chat.cache)


async def _start(request: Request, backend: BackendDep, caller: Principal) -> Submitted:
    body = parse(ChatRequest, await read_object(request, backend.settings.max_body_bytes))
    return await submit(as_job(body), backend, caller)


def _answer(job: dict[str, Any], cached: bool) -> dict[str, Any]:
    return {"response": (job.get("result") or {}).get("text", ""), "model": job["model"],
            "usage": job["usage"], "cost_usd": job["cost_usd"], "cached": cached,
            "job_id": job["id"]}


@router.post("", response_model=ChatResponse, openapi_extra=CHAT_BODY,
             responses={504: {"description": "the job is still running; poll job_id"}})
async def chat(request: Request, backend: BackendDep, hub: HubDep,
               caller: PrincipalDep) -> JSONResponse:
    """Runs as an interactive job and waits for it up to TIMEOUT seconds."""
    submitted = await _start(request, backend, caller)
    job_id = submitted.job["id"]
    if submitted.cached is not None:
        hit = submitted.cached
        return JSONResponse({"response": hit["text"], "model": hit["model"],
                             "usage": dict.fromkeys(TOKEN_FIELDS, 0), "cost_usd": 0.0,
                             "cached": True, "job_id": job_id})
    try:
        async with asyncio.timeout(backend.settings.timeout):
            job = await _wait_done(submitted.events(backend, hub))
    except TimeoutError:
        return JSONResponse({"error": {
            "type": "timeout", "job_id": job_id, "links": submitted.job["links"],
            "message": f"job {job_id} still running after {backend.settings.timeout:g}s; "
                       f"poll /api/jobs/{job_id}"}}, status_code=504)
    if job["status"] != "succeeded":
        error = job.get("error") or {"type": job["status"], "message": f"job {job['status']}"}
        return JSONResponse({"error": {**error, "job_id": job_id}}, status_code=502)
    return JSONResponse(_answer(job, cached=not submitted.created))


async def _wait_done(frames: AsyncIterator[bytes]) -> dict[str, Any]:
    async for frame in frames:
        if events.is_done(frame):
            done: dict[str, Any] = json.loads(frame.split(b"\ndata: ", 1)[1])
            return done
    raise RuntimeError("event stream ended without done")


@router.post("/stream", response_class=StreamingResponse, openapi_extra=CHAT_BODY,
             responses={200: {"content": {"text/event-stream": {}}}})
async def chat_stream(request: Request, backend: BackendDep, hub: HubDep,
                      caller: PrincipalDep, draining: DrainingDep) -> StreamingResponse:
    """The job's events as SSE: `token`s, then `done` with the job JSON."""
    slots: StreamSlots = request.app.state.streams
    slots.take(caller.tenant)
    try:
        submitted = await _start(request, backend, caller)
    except BaseException:
        slots.give_back(caller.tenant)
        raise
    stream = slots.hold(caller.tenant, submitted.events(backend, hub, draining))
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={**sse.HEADERS, "X-Job-Id": submitted.job["id"]})
