"""Liveness (`/health`: the process answers) and readiness (`/ready`: Redis answers).

Readiness leaves workers out on purpose: every API replica shares the same workers, so their
absence would take the whole API out of service at once, and a client could no longer even
queue a job or read one already done. Worker absence shows in `/health`, in the
`sidecar_workers` metric and in the SidecarNoLiveWorkers alert instead."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis

from api.deps import RedisDep, SettingsDep
from shared import keys

router = APIRouter(tags=["health"])
WORKER_FRESH_SECONDS = 15.0


@router.get("/")
async def service_info(request: Request, settings: SettingsDep) -> dict[str, Any]:
    """What this service is and where its endpoints are."""
    return {
        "name": "Sidecar", "version": request.app.version,
        "description": "Claude behind a job queue for the CKCIAS Community Resilience App",
        "model": settings.model_id,
        "links": {"docs": "/docs", "openapi": "/openapi.json", "health": "/health",
                  "ready": "/ready", "metrics": "/metrics", "jobs": "/api/jobs",
                  "chat": "/api/chat", "chat_stream": "/api/chat/stream",
                  "limits": "/api/limits"},
    }


@router.get("/health")
async def health(request: Request, settings: SettingsDep) -> dict[str, Any]:
    """Liveness: answers 200 while the process runs. Redis and worker status come from the
    readiness probe's last result (refreshed in the background), so this makes no Redis call
    and a Redis outage never gets healthy API pods restarted."""
    started: float = request.app.state.started
    probe: dict[str, Any] = request.app.state.readiness
    return {"status": "ok", "version": request.app.version, "model": settings.model_id,
            "uptime_seconds": round(time.time() - started, 1), **probe}


async def readiness(redis: Redis) -> dict[str, Any]:
    """Whether Redis answers, and how many workers heartbeat within WORKER_FRESH_SECONDS."""
    try:
        async with asyncio.timeout(2.0):
            return {"redis": "ok", "workers": await live_workers(redis)}
    except Exception as exc:
        return {"redis": f"error: {type(exc).__name__}", "workers": 0}


async def live_workers(redis: Redis) -> int:
    """Workers heartbeat on Redis's clock, so freshness is judged on it too: an API host whose
    clock runs ahead would otherwise count every worker as gone."""
    seconds, micros = await redis.time()
    now = seconds + micros / 1_000_000
    return int(await redis.zcount(keys.workers(), now - WORKER_FRESH_SECONDS, "+inf"))


async def watch_readiness(app: Any, every: float = 2.0) -> None:
    """Keep `app.state.readiness` fresh for /health's body."""
    while True:
        app.state.readiness = await readiness(app.state.redis)
        await asyncio.sleep(every)


@router.get("/ready")
async def ready(request: Request, redis: RedisDep) -> JSONResponse:
    # 200 whenever Redis answers, workers or not (see the module's docstring).
    state = await readiness(redis)
    request.app.state.readiness = state
    ok = state["redis"] == "ok"
    return JSONResponse({"status": "ready" if ok else "not_ready", **state},
                        status_code=200 if ok else 503)
