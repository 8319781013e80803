"""The Celery application both sides share: the API sends tasks by name, workers run them.

Delivery settings, and why:
- `task_acks_late` + `task_reject_on_worker_lost`: a message is acknowledged only after its job
  ran, so a worker that dies mid-job leaves it to be delivered again rather than lost.
- `worker_prefetch_multiplier = 1`: a worker reserves no more jobs than it has slots, so queued
  work stays visible to (and can be taken by) other workers, and autoscaling sees it.
- `visibility_timeout` longer than the longest job: Redis hands an unacknowledged message to
  another worker only after this, so a short one would run long jobs twice. A worker that died
  is detected much sooner by the job lease (`JOB_LEASE_SECONDS`), not by this timeout.
- The broker transport is kombu's Redis transport without a new Redis client per call (see
  `shared.broker`); under Sentinel, kombu's Sentinel transport with the same change, and the
  sentinels' names for the master.
- The threads pool: a task's thread only waits while the job streams on the worker process's
  event loop, where the SDK can read on its aiohttp transport: 0.61-0.75x the CPU per token of
  a blocking call per thread, against 0.86-1.00x for gevent's pool, which also patches the
  standard library under every client (`bench.pools`).
"""

from __future__ import annotations

from celery import Celery
from celery.schedules import crontab
from kombu import Queue

from shared import broker
from shared.settings import Settings

RUN_JOB = "sidecar.run_job"
SUBMIT_UPSTREAM_BATCH = "sidecar.submit_upstream_batch"
POLL_UPSTREAM_BATCHES = "sidecar.poll_upstream_batches"
CANCEL_UPSTREAM_BATCH = "sidecar.cancel_upstream_batch"
NIGHTLY_BATCH = "sidecar.nightly_batch"
QUEUES = ("interactive", "batch")
VISIBILITY_TIMEOUT = 2 * 3600


def create_celery(settings: Settings) -> Celery:
    broker.install()
    app = Celery("sidecar", broker=broker.broker_url(settings))
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_pool="threads",
        worker_concurrency=settings.worker_concurrency,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT,
                                  **broker.transport_options(settings)},
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue="interactive",
        task_serializer="json",
        accept_content=["json"],
        # Task events cost three extra publishes per job; Flower turns them on when it runs.
        worker_send_task_events=False,
        task_send_sent_event=False,
        timezone=settings.nightly_timezone,
        beat_schedule=beat_schedule(settings),
    )
    return app


def beat_schedule(settings: Settings) -> dict[str, dict[str, object]]:
    """Periodic work for `celery -A workers beat` (run one beat only): collect finished
    Anthropic Message Batches, and create the nightly drought report."""
    schedule: dict[str, dict[str, object]] = {
        "collect-upstream-batches": {"task": POLL_UPSTREAM_BATCHES,
                                     "schedule": settings.upstream_batch_poll_seconds,
                                     "options": {"queue": "batch", "expires": 60}},
    }
    if settings.nightly_enabled:
        minute, hour, day, month, weekday = settings.nightly_cron.split()
        schedule["nightly-drought-report"] = {
            "task": NIGHTLY_BATCH, "options": {"queue": "batch"},
            "schedule": crontab(minute=minute, hour=hour, day_of_month=day,
                                month_of_year=month, day_of_week=weekday),
        }
    return schedule
