"""`GET /metrics`: Prometheus exposition built at scrape time from Redis, so every API process
answers with the whole service's figures, not its own fragment."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.deps import LimiterDep, RedisDep
from shared.celery_app import QUEUES

router = APIRouter(tags=["metrics"])


class _Snapshot(Collector):
    """Hands prebuilt families to prometheus-client's renderer."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def limiter_families(limiter: LimiterDep) -> list[Metric]:
    limit = GaugeMetricFamily("sidecar_rate_limit", "Rate limit per minute (learned or set)",
                              labels=["model", "bucket"])
    remaining = GaugeMetricFamily("sidecar_rate_limit_remaining", "Capacity left now",
                                  labels=["model", "bucket"])
    in_flight = GaugeMetricFamily("sidecar_calls_in_flight", "Claude calls in flight",
                                  labels=["model"])
    waiting = GaugeMetricFamily("sidecar_jobs_waiting_capacity", "Jobs waiting for capacity",
                                labels=["model"])
    upstream = CounterMetricFamily("sidecar_upstream_errors", "429/529 answers from Claude",
                                   labels=["model", "status"])
    for scope in await limiter.scopes():
        if scope.startswith("client:"):
            continue
        snap = await limiter.snapshot(scope)
        for bucket, value in snap["limits"].items():
            limit.add_metric([scope, bucket], value)
            if snap["remaining"][bucket] is not None:
                remaining.add_metric([scope, bucket], snap["remaining"][bucket])
        in_flight.add_metric([scope], snap["in_flight"])
        waiting.add_metric([scope], snap["waiting"])
        upstream.add_metric([scope, "429"], snap["upstream_429"])
        upstream.add_metric([scope, "529"], snap["upstream_529"])
    return [limit, remaining, in_flight, waiting, upstream]


async def queue_families(redis: RedisDep) -> list[Metric]:
    depth = GaugeMetricFamily("sidecar_queue_depth", "Messages waiting in each queue",
                              labels=["queue"])
    for queue in QUEUES:
        depth.add_metric([queue], await redis.llen(queue))
    return [depth]


@router.get("/metrics")
async def metrics(redis: RedisDep, limiter: LimiterDep) -> Response:
    families = [*await limiter_families(limiter), *await queue_families(redis)]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
