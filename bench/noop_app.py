"""A Celery app with Sidecar's exact Celery configuration and one task that does nothing but
note when it started: the bare-Celery baseline of `bench.pipeline`.

    celery -A bench.noop_app worker -Q bench-noop ...

The task pushes `time.time()` at its start onto a Redis list named after the token it was sent
with, so the sender can block on that list and compute send→start latency on one clock.
"""

from __future__ import annotations

import time

import redis

from shared.celery_app import create_celery
from shared.settings import get_settings

NOOP = "bench.noop"
QUEUE = "bench-noop"

_settings = get_settings()
app = create_celery(_settings)
_redis = redis.Redis.from_url(_settings.redis_url)  # thread-safe: one pool for all task threads


def started_key(token: str) -> str:
    return f"bench:noop:{token}"


@app.task(name=NOOP, acks_late=True, reject_on_worker_lost=True)
def noop(token: str) -> None:
    started = time.time()
    _redis.rpush(started_key(token), repr(started))
