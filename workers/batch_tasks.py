"""Celery tasks of batches: submitting and collecting Anthropic Message Batches, and the nightly
report. Thin: each runs a plain coroutine on the worker process's event loop."""

from __future__ import annotations

from celery import Celery

from shared.batches import BatchStore
from shared.celery_app import (
    CANCEL_UPSTREAM_BATCH,
    NIGHTLY_BATCH,
    POLL_UPSTREAM_BATCHES,
    SUBMIT_UPSTREAM_BATCH,
)
from workers import nightly, upstream
from workers.tasks import runtime


def register_batch_tasks(app: Celery) -> None:
    def batches() -> BatchStore:
        rt = runtime(app)
        return BatchStore(rt.redis, rt.ctx.store)

    @app.task(name=SUBMIT_UPSTREAM_BATCH, acks_late=True)
    def submit_upstream_batch(batch_id: str) -> str:
        rt = runtime(app)
        result: str = rt.call(upstream.submit(rt.ctx, batches(), batch_id))
        return result

    @app.task(name=POLL_UPSTREAM_BATCHES, acks_late=True)
    def poll_upstream_batches() -> list[str]:
        rt = runtime(app)
        result: list[str] = rt.call(upstream.poll(rt.ctx, batches()))
        return result

    @app.task(name=CANCEL_UPSTREAM_BATCH, acks_late=True)
    def cancel_upstream_batch(batch_id: str) -> None:
        rt = runtime(app)
        rt.call(upstream.cancel(rt.ctx, batches(), batch_id))

    @app.task(name=NIGHTLY_BATCH, acks_late=True)
    def nightly_batch(night: str | None = None) -> str | None:
        rt = runtime(app)

        def submit_upstream(batch_id: str) -> None:
            app.send_task(SUBMIT_UPSTREAM_BATCH, args=[batch_id], queue="batch")

        result: str | None = rt.call(nightly.run(batches(), rt.settings, submit_upstream,
                                                 night))
        return result
