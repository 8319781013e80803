"""What routes receive by injection: settings, Redis, the job store, the pub/sub hub, the
Celery app used to enqueue, and the caller (`Principal`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from redis.asyncio import Redis

from api.auth import Keyring, Principal
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


def _bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    return given or request.headers.get("x-api-key", "").strip()


async def principal(request: Request) -> Principal:
    """The caller (a service key or a browser token); 401 when neither is valid."""
    keyring: Keyring = request.app.state.keyring  # not a sub-dependency: every route pays it
    return keyring.authenticate(_bearer(request))


async def stream_principal(
    request: Request,
    access_token: Annotated[str | None, Query(description="a browser token, for EventSource "
                                              "(which cannot send headers)")] = None,
) -> Principal:
    """As `principal`, also taking a browser token from `?access_token=` — never a service
    key, which must not travel in URLs that proxies and browsers keep."""
    keyring: Keyring = request.app.state.keyring
    given = _bearer(request)
    if given or not access_token:
        return keyring.authenticate(given)
    if keyring.tenant_of(access_token) is not None:
        raise Unauthorized("a service key may not be sent in the URL: use the "
                           "Authorization header")
    return keyring.verify(access_token)


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[Redis, Depends(_state("redis"))]
StoreDep = Annotated[JobStore, Depends(_state("store"))]
LimiterDep = Annotated[Limiter, Depends(_state("limiter"))]
HubDep = Annotated[Hub, Depends(_state("hub"))]
BackendDep = Annotated[Backend, Depends(_state("backend"))]
DrainingDep = Annotated[asyncio.Event, Depends(_state("draining"))]
PrincipalDep = Annotated[Principal, Depends(principal)]
StreamPrincipalDep = Annotated[Principal, Depends(stream_principal)]
