"""A farming app's backend that gets its AI answers from Sidecar: the seed's backend integration
example, rebuilt on Sidecar's job API.

The backend owns the domain (drought readings, forecasts, the assistant's persona) and turns it
into prompts; Sidecar owns everything about Claude (queueing, rate limits, retries, caching,
cost). So this app needs no Claude key, and many copies of it can share one Sidecar's limits.

Run it with Sidecar up (`sidecar up` in another terminal):

    uvicorn examples.backend_app:app --port 8100

It finds Sidecar at `SIDECAR_URL` (else http://127.0.0.1:8000). Try:

    curl -s -X POST http://localhost:8100/api/analyze-drought -H 'Content-Type: application/json' \
      -d '{"region": "Canterbury", "rainfall_mm_30d": 12, "soil_moisture_pct": 18, "spi_3m": -1.6}'
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, cast

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from examples import prompts
from examples.schemas import (
    AdvancedRequest,
    Analysis,
    ChatReply,
    ChatRequest,
    DroughtReading,
    Explanation,
    ForecastRequest,
)
from sidecar.client import StreamChunk
from sidecar.errors import JobFailed, RateLimitError, SidecarError
from sidecar.jobs import AsyncJobsClient, answer_text

DEFAULT_SIDECAR_URL = "http://127.0.0.1:8000"
# Output budgets per kind of answer: an analysis needs room for its three parts, a chat reply
# should stay short enough to read on a phone in the paddock.
ANALYSIS_TOKENS, CHAT_TOKENS, FORECAST_TOKENS = 700, 400, 400


def resolve_sidecar_url(url: str | None = None) -> str:
    """The argument, else the `SIDECAR_URL` setting, else Sidecar's default address."""
    if url:
        return url
    from shared.settings import get_settings

    return get_settings().sidecar_url or DEFAULT_SIDECAR_URL


def get_sidecar(request: Request) -> AsyncJobsClient:
    client: AsyncJobsClient = request.app.state.sidecar
    return client


SidecarDep = Annotated[AsyncJobsClient, Depends(get_sidecar)]


async def ask(sidecar: AsyncJobsClient, message: str, system: str,
              **options: Any) -> tuple[str, str, float]:
    """Run one chat job to its end: (text, job id, cost). A cache hit cost this call nothing,
    though the job it points at shows what the original answer cost."""
    accepted = await sidecar.submit_chat(message, system=system, **options)
    job = await sidecar.wait(accepted["id"])
    cost = 0.0 if accepted.get("cached") else float(job["cost_usd"])
    return answer_text(job), job["id"], cost


async def analyse(sidecar: AsyncJobsClient, reading: DroughtReading) -> Analysis:
    text, job_id, cost = await ask(sidecar, prompts.analysis_prompt(reading),
                                   prompts.DROUGHT_ANALYST, max_tokens=ANALYSIS_TOKENS,
                                   temperature=0.2)
    return Analysis(region=reading.region, analysis=text, job_id=job_id, cost_usd=cost)


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def chunk_frame(chunk: StreamChunk) -> bytes:
    """Text as unnamed events (EventSource's `onmessage`), a retry as `reset`, the end as
    `done` with the usage."""
    if chunk.reset:
        return sse({}, "reset")
    if chunk.is_final:
        return sse({"usage": chunk.usage}, "done")
    return sse({"text": chunk.content})


async def relay(first: StreamChunk,
                rest: AsyncGenerator[StreamChunk, None]) -> AsyncIterator[bytes]:
    """Frames for the browser. Closing `rest` at the end (or when the browser goes away)
    closes the connection to Sidecar's event stream at once, not whenever it is collected."""
    try:
        yield chunk_frame(first)
        async for chunk in rest:
            yield chunk_frame(chunk)
    except SidecarError as exc:  # the status line is sent: the error goes in the stream
        yield sse({"type": exc.error_type or "sidecar_error", "message": exc.message}, "error")
    finally:
        await rest.aclose()


def error(status: int, kind: str, message: str,
          headers: dict[str, str] | None = None) -> JSONResponse:
    """The same error shape as Sidecar's own, so a frontend handles both alike."""
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status,
                        headers=headers)


async def sidecar_failed(request: Request, exc: Exception) -> JSONResponse:
    """Sidecar's trouble as this backend's answer: its rate limit passes through as a 429 with
    `Retry-After`; a failed job or a refused request is a 502."""
    if isinstance(exc, RateLimitError):
        after = str(max(1, round(exc.retry_after or 1)))
        return error(429, "rate_limited", exc.message, {"Retry-After": after})
    kind = getattr(exc, "error_type", None) or (
        "job_failed" if isinstance(exc, JobFailed) else "sidecar_error")
    return error(502, kind, str(exc))


async def sidecar_unreachable(request: Request, exc: Exception) -> JSONResponse:
    return error(503, "sidecar_unreachable", f"Sidecar did not answer: {exc}")


def add_routes(app: FastAPI) -> None:
    @app.post("/api/analyze-drought", response_model=Analysis)
    async def analyze_drought(reading: DroughtReading, sidecar: SidecarDep) -> Analysis:
        return await analyse(sidecar, reading)

    @app.post("/api/chat-assistant", response_model=ChatReply)
    async def chat_assistant(body: ChatRequest, sidecar: SidecarDep) -> ChatReply:
        history = [turn.model_dump() for turn in body.history]
        text, job_id, _ = await ask(sidecar, body.message, prompts.ASSISTANT,
                                    history=history, max_tokens=CHAT_TOKENS)
        return ChatReply(reply=text, job_id=job_id)

    @app.post("/api/forecast-explanation", response_model=Explanation)
    async def forecast_explanation(body: ForecastRequest, sidecar: SidecarDep) -> Explanation:
        prompt = prompts.forecast_prompt(body.forecast, body.audience, body.region)
        text, job_id, cost = await ask(sidecar, prompt, prompts.forecast_system(body.audience),
                                       max_tokens=FORECAST_TOKENS)
        return Explanation(explanation=text, audience=body.audience, job_id=job_id,
                           cost_usd=cost)

    @app.post("/api/analyze-drought-stream", response_class=StreamingResponse,
              responses={200: {"content": {"text/event-stream": {}}}})
    async def analyze_drought_stream(reading: DroughtReading,
                                     sidecar: SidecarDep) -> StreamingResponse:
        """The analysis as it is written. The first chunk is awaited before answering, so a
        refused or rate-limited submission still gets a proper status instead of a 200."""
        # An async generator, though declared as the wider AsyncIterator: it can be closed.
        chunks = cast(AsyncGenerator[StreamChunk, None], sidecar.chat_stream(
            prompts.analysis_prompt(reading), system=prompts.DROUGHT_ANALYST,
            max_tokens=ANALYSIS_TOKENS, temperature=0.2))
        first = await anext(chunks)
        return StreamingResponse(relay(first, chunks), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.post("/api/advanced-analysis", response_model=list[Analysis])
    async def advanced_analysis(body: AdvancedRequest, sidecar: SidecarDep) -> list[Analysis]:
        """Every region at once: the jobs queue side by side and Sidecar's limiter, not this
        app, decides how fast they run."""
        return list(await asyncio.gather(*(analyse(sidecar, r) for r in body.regions)))


def create_app(sidecar_url: str | None = None) -> FastAPI:
    """The backend, talking to the Sidecar at `sidecar_url` (see `resolve_sidecar_url`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Resolved at start-up, not import: importing this module reads no settings.
        async with AsyncJobsClient(resolve_sidecar_url(sidecar_url)) as client:
            app.state.sidecar = client
            yield

    app = FastAPI(title="CKCIAS farming backend (Sidecar example)", lifespan=lifespan)
    app.add_exception_handler(SidecarError, sidecar_failed)
    app.add_exception_handler(httpx.TransportError, sidecar_unreachable)
    add_routes(app)
    return app


app = create_app()
