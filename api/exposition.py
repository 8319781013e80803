"""Building Prometheus metric families from the service-wide figures kept in Redis."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from redis.asyncio import Redis

from shared import metrics
from shared.celery_app import QUEUES
from shared.limiter import Limiter


def _pairs(hash_: dict[str, str]) -> Iterable[tuple[str, str, float]]:
    """`{"a b": "3"}` → `("a", "b", 3.0)`: hashes key two labels with a space."""
    for field, value in hash_.items():
        first, _, second = field.partition(" ")
        yield first, second, float(value)


async def request_families(redis: Redis) -> tuple[list[Metric], dict[str, float]]:
    total = CounterMetricFamily("sidecar_requests", "HTTP requests by endpoint and status",
                                labels=["endpoint", "status"])
    processed = failed = 0.0
    for endpoint, status, count in _pairs(await metrics.read(redis, "requests")):
        total.add_metric([endpoint, status], count)
        processed += count
        failed += count if int(status) >= 400 else 0
    rate = (processed - failed) / processed if processed else 1.0
    figures = {"processed": processed, "failed": failed, "success_rate": rate}
    return [
        total,
        CounterMetricFamily("sidecar_requests_processed", "HTTP requests answered",
                            value=processed),
        CounterMetricFamily("sidecar_requests_failed", "HTTP requests answered >= 400",
                            value=failed),
        GaugeMetricFamily("sidecar_success_rate", "Share of requests answered < 400", value=rate),
    ], figures


async def job_families(redis: Redis) -> list[Metric]:
    jobs = CounterMetricFamily("sidecar_jobs", "Jobs by type and status (submitted or final)",
                               labels=["type", "status"])
    for job_type, status, count in _pairs(await metrics.read(redis, "jobs")):
        jobs.add_metric([job_type, status], count)
    tokens = CounterMetricFamily("sidecar_tokens", "Tokens by model and kind",
                                 labels=["model", "kind"])
    for model, kind, count in _pairs(await metrics.read(redis, "tokens")):
        tokens.add_metric([model, kind], count)
    cost = CounterMetricFamily("sidecar_cost_usd", "Dollars spent on Claude by model",
                               labels=["model"])
    for model, value in (await metrics.read(redis, "cost")).items():
        cost.add_metric([model], float(value))
    cache = await metrics.read(redis, "cache")
    misses = float(cache.get("misses", 0))
    hits = max(0.0, float(cache.get("lookups", 0)) - misses)
    return [
        jobs, tokens, cost,
        CounterMetricFamily("sidecar_cache_hits", "Response cache hits", value=hits),
        CounterMetricFamily("sidecar_cache_misses", "Response cache misses", value=misses),
        await _histogram(redis, "ttft", "sidecar_time_to_first_token_seconds",
                         "From submission to the first token"),
        await _histogram(redis, "duration", "sidecar_job_duration_seconds",
                         "From submission to the end of a succeeded job"),
    ]


async def _histogram(redis: Redis, name: str, metric: str, doc: str) -> Metric:
    raw = await metrics.read(redis, name)
    cumulative, buckets = 0.0, []
    for le in [*map(str, metrics.BUCKETS), "+Inf"]:
        cumulative += float(raw.get(le, 0))
        buckets.append((le, cumulative))
    return HistogramMetricFamily(metric, doc, buckets=buckets,
                                 sum_value=float(raw.get("sum", 0)))


async def queue_families(redis: Redis) -> list[Metric]:
    depth = GaugeMetricFamily("sidecar_queue_depth", "Messages waiting in each queue",
                              labels=["queue"])
    for queue in QUEUES:
        depth.add_metric([queue], await redis.llen(queue))
    return [depth]


async def limiter_families(limiter: Limiter) -> list[Metric]:
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


def worker_families(live: int) -> list[Metric]:
    """Worker absence is an alert, not a readiness failure (see `api.routes.health`)."""
    return [GaugeMetricFamily("sidecar_workers", "Workers with a fresh heartbeat (Redis's clock)",
                              value=live)]


def process_families(started: float, model: str, version: str) -> list[Metric]:
    info = GaugeMetricFamily("sidecar_info", "The service's version and default model",
                             labels=["version", "model"])
    info.add_metric([version, model], 1)
    return [info, GaugeMetricFamily("sidecar_uptime_seconds", "Seconds since this API started",
                                    value=time.time() - started)]


def seed_figures(figures: dict[str, float], model: str, started: float) -> dict[str, Any]:
    """The original Sidecar's JSON metrics."""
    return {"requests_processed": int(figures["processed"]),
            "requests_failed": int(figures["failed"]),
            "success_rate": round(figures["success_rate"], 4), "model": model,
            "uptime_seconds": round(time.time() - started, 1)}
