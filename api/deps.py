"""What routes receive by injection: settings, Redis, the job store, the pub/sub hub, the
Celery app used to enqueue, and the calling client's identity."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from redis.asyncio import Redis

from api.hub import Hub
from api.submission import Backend
from shared.errors import Unauthorized
from shared.jobstore import JobStore
from shared.limiter import Limiter
from shared.settings import Settings


def _state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency handing a route what the app factory put in `app.state`."""

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    dependency.__name__ = f"get_{name}"
    return dependency


get_settings = _state("settings")


async def client_key(request: Request) -> str:
    """The caller's API key when keys are on ('' when they are off); 401 otherwise."""
    settings: Settings = request.app.state.settings  # not a sub-dependency: every route pays it
    if not settings.sidecar_api_keys:
        return ""
    auth = request.headers.get("authorization", "")
    given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    given = given or request.headers.get("x-api-key", "")
    for key in settings.sidecar_api_keys:
        if given and hmac.compare_digest(given.encode(), key.encode()):
            return key
    raise Unauthorized("missing or unknown API key: send 'Authorization: Bearer <key>'")


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[Redis, Depends(_state("redis"))]
StoreDep = Annotated[JobStore, Depends(_state("store"))]
LimiterDep = Annotated[Limiter, Depends(_state("limiter"))]
HubDep = Annotated[Hub, Depends(_state("hub"))]
BackendDep = Annotated[Backend, Depends(_state("backend"))]
DrainingDep = Annotated[asyncio.Event, Depends(_state("draining"))]
ClientKeyDep = Annotated[str, Depends(client_key)]
