"""`GET /api/limits`: what the shared limiter knows and has left, per model and client."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ClientKeyDep, LimiterDep

router = APIRouter(tags=["limits"])


@router.get("/api/limits")
async def limits(limiter: LimiterDep, client: ClientKeyDep) -> dict[str, Any]:
    """Limits (learned or configured), capacity remaining now, calls in flight, jobs waiting,
    and upstream 429/529 counts, per model; client keys' buckets under `clients`."""
    scopes = await limiter.scopes()
    return {
        "models": {s: await limiter.snapshot(s) for s in scopes if not s.startswith("client:")},
        "clients": {s: await limiter.snapshot(s) for s in scopes if s.startswith("client:")},
    }
