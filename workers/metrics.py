"""Each worker process's own Prometheus figures, served on WORKER_METRICS_PORT for scraping:
jobs by type and status, attempts, time to first token and duration, limiter waits, upstream
429/529, tokens and cost by model, and the queues' depth. (The API's /metrics shows the
service-wide totals from Redis; these show what each worker is doing.)"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.celery_app import QUEUES
from shared.record import seconds_between
from shared.redis import connect_sync
from shared.settings import Settings

log = logging.getLogger("sidecar.worker")
SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class _QueueDepth(Collector):
    """Read at scrape time, so the figure is never stale."""

    def __init__(self, target: Settings | str) -> None:
        # A bare URL cannot name a Sentinel-managed master: settings can (a URL is still taken
        # for tests and callers that have only one).
        if isinstance(target, str):
            self.redis = redis.Redis.from_url(target, socket_timeout=2)
        else:
            self.redis = connect_sync(target, socket_timeout=2)

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily("sidecar_worker_queue_depth", "Messages waiting per queue",
                                  labels=["queue"])
        try:
            for queue in QUEUES:
                depth.add_metric([queue], float(self.redis.llen(queue)))
        except redis.RedisError:
            pass
        return [depth]


class WorkerMetrics:
    def __init__(self, target: Settings | str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs = Counter("sidecar_worker_jobs", "Jobs ended, by type and status",
                            ["type", "status"], registry=r)
        self.attempts = Histogram("sidecar_worker_job_attempts", "Upstream calls per job",
                                  buckets=(1, 2, 3, 4, 6, 10), registry=r)
        self.ttft = Histogram("sidecar_worker_time_to_first_token_seconds",
                              "Submission to first token", buckets=SECONDS, registry=r)
        self.duration = Histogram("sidecar_worker_job_duration_seconds",
                                  "Submission to the end of a job", buckets=SECONDS, registry=r)
        self.waits = Histogram("sidecar_worker_limiter_wait_seconds",
                               "Time jobs waited for rate-limit capacity", ["model"],
                               buckets=SECONDS, registry=r)
        self.upstream = Counter("sidecar_worker_upstream_errors", "429/529 answers from Claude",
                                ["model", "status"], registry=r)
        self.tokens = Counter("sidecar_worker_tokens", "Tokens by model and kind",
                              ["model", "kind"], registry=r)
        self.cost = Counter("sidecar_worker_cost_usd", "Dollars spent, by model", ["model"],
                            registry=r)
        self.running = Gauge("sidecar_worker_jobs_running", "Jobs this process is running",
                             registry=r)
        r.register(_QueueDepth(target))

    def serve(self, port: int, host: str = "0.0.0.0") -> None:
        """Expose the figures on `port`; a port already taken (a second worker on the same
        host) only loses this process's endpoint, never the worker."""
        if port <= 0:
            return
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log.warning("worker metrics not served", extra={"port": port, "error": str(exc)})

    def job_ended(self, job: Mapping[str, Any]) -> None:
        self.jobs.labels(job["type"], job["status"]).inc()
        self.attempts.observe(job.get("attempts") or 0)
        for name, value in (job.get("usage") or {}).items():
            if isinstance(value, int) and value:
                self.tokens.labels(job["model"], name).inc(value)
        if job.get("cost_usd"):
            self.cost.labels(job["model"]).inc(job["cost_usd"])
        if (ttft := seconds_between(job.get("created_at"), job.get("first_token_at"))) is not None:
            self.ttft.observe(ttft)
        if (took := seconds_between(job.get("created_at"), job.get("finished_at"))) is not None:
            self.duration.observe(took)

    def waited(self, model: str, seconds: float) -> None:
        self.waits.labels(model).observe(seconds)

    def upstream_error(self, model: str, status: int) -> None:
        self.upstream.labels(model, str(status)).inc()
