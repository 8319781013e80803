"""What routes receive by injection: settings, Redis, the job store, the pub/sub hub, the
Celery app used to enqueue, and the calling client's identity."""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request
from redis.asyncio import Redis

from api.hub import Hub
from api.submission import Backend
from shared.errors import Unauthorized
from shared.jobstore import JobStore
from shared.limiter import Limiter
from shared.settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


async def get_store(request: Request) -> JobStore:
    store: JobStore = request.app.state.store
    return store


async def get_limiter(request: Request) -> Limiter:
    limiter: Limiter = request.app.state.limiter
    return limiter


async def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


async def get_backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


async def get_draining(request: Request) -> asyncio.Event:
    draining: asyncio.Event = request.app.state.draining
    return draining


async def get_celery(request: Request) -> Celery:
    celery: Celery = request.app.state.celery
    return celery


async def client_key(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> str:
    """The caller's API key when keys are on ('' when they are off); 401 otherwise."""
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
RedisDep = Annotated[Redis, Depends(get_redis)]
StoreDep = Annotated[JobStore, Depends(get_store)]
LimiterDep = Annotated[Limiter, Depends(get_limiter)]
HubDep = Annotated[Hub, Depends(get_hub)]
BackendDep = Annotated[Backend, Depends(get_backend)]
DrainingDep = Annotated[asyncio.Event, Depends(get_draining)]
CeleryDep = Annotated[Celery, Depends(get_celery)]
ClientKeyDep = Annotated[str, Depends(client_key)]
