"""Celery tasks: thin wrappers that hand a job id to the process runtime, which is built once
per worker process."""

from __future__ import annotations

import sys
import threading

import redis.exceptions
from celery import Celery, Task, signals
from celery.exceptions import Reject

from shared.celery_app import RUN_JOB
from shared.heap import freeze_startup_objects
from shared.settings import get_settings
from shared.taskwire import HINTS_HEADER, Hints
from workers.runtime import Runtime

# The GIL switch interval of a worker process. Celery's consumer thread, which takes every job
# in, makes blocking Redis round trips per message (fetch, note it unacknowledged, acknowledge)
# and after each one waits for the GIL behind the event loop where the streams run, up to the
# whole interval (5 ms by default). A burst of 200 jobs started over 0.5-0.7 s at p99 with the
# default, 0.43-0.47 s with this; steady load is unchanged (bench.pipeline).
SWITCH_INTERVAL = 0.0005

_lock = threading.Lock()
_runtime: Runtime | None = None


def runtime(app: Celery) -> Runtime:
    """The process's runtime, built on first use (after fork, never at import)."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime(get_settings())
        return _runtime


def register(app: Celery) -> None:
    @app.task(name=RUN_JOB, bind=True, acks_late=True, reject_on_worker_lost=True)
    def run_job(task: Task, job_id: str) -> str:
        hints = Hints.from_header(getattr(task.request, HINTS_HEADER, None))
        try:
            return runtime(app).run(job_id, hints)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            # Redis is away: give the message back rather than drop the job.
            raise Reject(str(exc), requeue=True) from exc

    @signals.worker_ready.connect(weak=False)
    def _start(**_: object) -> None:
        runtime(app)
        freeze_startup_objects()  # the runtime and its clients exist by now
        sys.setswitchinterval(SWITCH_INTERVAL)

    @signals.worker_shutting_down.connect(weak=False)
    def _drain(**_: object) -> None:
        if _runtime is not None:
            _runtime.drain(_runtime.settings.worker_shutdown_grace_seconds)

    @signals.worker_shutdown.connect(weak=False)
    def _stop(**_: object) -> None:
        if _runtime is not None:
            _runtime.close()
