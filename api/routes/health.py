"""Liveness (`/health`: the process answers) and readiness (`/ready`: Redis and a worker)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import RedisDep
from shared import keys

router = APIRouter(tags=["health"])
WORKER_FRESH_SECONDS = 15.0


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Liveness: no Redis call, so a Redis outage never restarts healthy API pods."""
    started: float = request.app.state.started
    return {"status": "ok", "version": request.app.version,
            "uptime_seconds": round(time.time() - started, 1)}


async def readiness(redis: RedisDep) -> dict[str, Any]:
    try:
        await redis.ping()
        recent = await redis.zrangebyscore(keys.workers(), time.time() - WORKER_FRESH_SECONDS,
                                           "+inf")
    except Exception as exc:
        return {"redis": f"error: {type(exc).__name__}", "workers": 0}
    return {"redis": "ok", "workers": len(recent)}


@router.get("/ready")
async def ready(redis: RedisDep) -> JSONResponse:
    state = await readiness(redis)
    ok = state["redis"] == "ok" and state["workers"] > 0
    return JSONResponse({"status": "ready" if ok else "not_ready", **state},
                        status_code=200 if ok else 503)
