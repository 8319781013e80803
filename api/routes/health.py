"""Liveness (`/health`: the process answers) and readiness (`/ready`: Redis and a worker)."""

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
    try:
        async with asyncio.timeout(2.0):
            await redis.ping()
            recent = await redis.zrangebyscore(keys.workers(),
                                               time.time() - WORKER_FRESH_SECONDS, "+inf")
    except Exception as exc:
        return {"redis": f"error: {type(exc).__name__}", "workers": 0}
    return {"redis": "ok", "workers": len(recent)}


async def watch_readiness(app: Any, every: float = 2.0) -> None:
    """Keep `app.state.readiness` fresh for /health's body."""
    while True:
        app.state.readiness = await readiness(app.state.redis)
        await asyncio.sleep(every)


@router.get("/ready")
async def ready(request: Request, redis: RedisDep) -> JSONResponse:
    state = await readiness(redis)
    request.app.state.readiness = state
    ok = state["redis"] == "ok" and state["workers"] > 0
    return JSONResponse({"status": "ready" if ok else "not_ready", **state},
                        status_code=200 if ok else 503)
