"""`GET /api/limits`: what the shared limiter knows and has left, per model and client."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import require_service
from api.deps import LimiterDep, PrincipalDep
from api.quotas import client_scope

router = APIRouter(tags=["limits"])


@router.get("/api/limits")
async def limits(limiter: LimiterDep, caller: PrincipalDep) -> dict[str, Any]:
    """Limits (learned or configured), capacity remaining now, calls in flight, jobs waiting,
    and upstream 429/529 counts, per model; the caller's tenant's buckets under `clients`
    (service keys only: a browser token has no business with the service's capacity)."""
    require_service(caller)
    scopes = await limiter.scopes()
    own = client_scope(caller.tenant)
    return {
        "models": {s: await limiter.snapshot(s) for s in scopes if not s.startswith("client:")},
        "clients": {s: await limiter.snapshot(s) for s in scopes if s == own},
    }
