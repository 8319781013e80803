"""`GET /metrics`: Prometheus exposition built at scrape time from Redis, so every API process
answers with the whole service's figures, not its own fragment; `?format=json` gives the
original Sidecar's JSON figures."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from api import exposition
from api.deps import LimiterDep, RedisDep, SettingsDep
from api.routes.health import live_workers
from shared.errors import Unauthorized

router = APIRouter(tags=["metrics"])


class _Snapshot(Collector):
    """Hands prebuilt families to prometheus-client's renderer."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def scraper(request: Request, settings: SettingsDep) -> None:
    """With METRICS_TOKEN set, only `Authorization: Bearer <METRICS_TOKEN>` may scrape."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if not token:
        return
    auth = request.headers.get("authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise Unauthorized("/metrics needs 'Authorization: Bearer <METRICS_TOKEN>'")


@router.get("/metrics", response_model=None, dependencies=[Depends(scraper)],
            responses={401: {"description": "METRICS_TOKEN is set and was not sent"}})
async def metrics(request: Request, redis: RedisDep, limiter: LimiterDep, settings: SettingsDep,
                  format: Literal["prometheus", "json"] = "prometheus") -> Response:
    started: float = request.app.state.started
    requests, figures = await exposition.request_families(redis)
    if format == "json":
        return JSONResponse(exposition.seed_figures(figures, settings.model_id, started))
    families = [
        *requests,
        *await exposition.job_families(redis),
        *await exposition.queue_families(redis),
        *exposition.worker_families(await live_workers(redis)),
        *await exposition.limiter_families(limiter),
        *exposition.process_families(started, settings.model_id, request.app.version),
    ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
