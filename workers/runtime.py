"""A worker process's runtime: one event loop (in its own thread) where every job's Claude
stream runs, the clients built once for the process, and the housekeeping that makes jobs
survive dead workers — lease renewal, a reaper for lapsed leases, heartbeats, and the cancel
listener.

Celery's task threads only hand a job id to this loop and wait, so a process holds hundreds of
streams at asyncio's CPU cost per token.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import os
import random
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from shared import keys
from shared.cache import ResponseCache
from shared.jobstore import JobStore
from shared.limiter import Limiter
from shared.loops import every
from shared.metrics import Tally
from shared.record import Renewal, as_str
from shared.redis import connect
from shared.settings import Settings
from shared.taskwire import Hints
from workers import claude
from workers.context import Context
from workers.metrics import WorkerMetrics
from workers.runner import prepare, run_job

log = logging.getLogger("sidecar.worker")

HEARTBEAT_SECONDS = 5.0
FORGET_WORKER_SECONDS = 3600.0  # a worker silent this long leaves the live set
UNACKED_SWEEP_TICKS = 10  # the reaper looks at unacknowledged messages every tenth tick


@dataclass(eq=False)
class Run:
    """One delivery of a job running in this process. A job may be delivered twice to the same
    process (Celery restoring a message while the first delivery still runs): each delivery is
    its own Run, with its own owner token, so the second never hides the first from renewal or
    cancellation."""

    job_id: str
    owner: str
    task: asyncio.Task[str]


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.loop = _new_loop()
        self.runs: set[Run] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sidecar-loop",
                                        daemon=True)
        self._thread.start()
        self.metrics = WorkerMetrics(settings)
        self.metrics.serve(settings.worker_metrics_port, settings.worker_metrics_host)
        self.ctx: Context = self.call(self._setup())
        self._housekeeping = [
            asyncio.run_coroutine_threadsafe(coro, self.loop)
            for coro in (self._renew_leases(), self._reap(), self._heartbeat(), self._listen(),
                         self.ctx.limiter.keep_alive(), self.ctx.tally.run())
        ]

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def _setup(self) -> Context:
        self.redis = connect(self.settings)
        store = JobStore(self.redis, self.settings.job_ttl_seconds)
        client = claude.create_client(self.settings, self.settings.worker_concurrency + 10)
        ctx = Context(settings=self.settings, store=store, client=client,
                      worker_name=self.name, limiter=Limiter(self.redis, self.settings),
                      cache=ResponseCache(self.redis, self.settings.cache_ttl_seconds),
                      tally=Tally(self.redis), metrics=self.metrics)
        with contextlib.suppress(RedisError):  # Redis away at start: the patient path loads them
            await prepare(ctx)
        return ctx

    def running(self, job_id: str) -> list[Run]:
        return [run for run in self.runs if run.job_id == job_id]

    async def _hand_back_unclaimed(self, job_id: str) -> str:
        """Stopped before it was claimed (waiting for capacity): send it to the queue again
        (if it is still queued: the record and the message in one step)."""
        self.ctx.handing_back.discard(job_id)
        record = await self.ctx.store.get(job_id)
        if record is not None:
            await self.ctx.store.send_again(job_id, record["priority"])
        return "handed back"

    def run(self, job_id: str, hints: Hints | None = None) -> str:
        """Run a job on the loop and wait for it (called from a Celery task thread)."""
        future: concurrent.futures.Future[str] = asyncio.run_coroutine_threadsafe(
            self._run(job_id, hints), self.loop
        )
        return future.result()

    async def _run(self, job_id: str, hints: Hints | None) -> str:
        task = asyncio.current_task()
        assert task is not None
        run = Run(job_id, f"{self.name}:{random.getrandbits(48):012x}", task)
        self.runs.add(run)
        self.metrics.running.inc()
        try:
            return await run_job(self.ctx, job_id, hints, run.owner)
        except asyncio.CancelledError:
            if job_id not in self.ctx.handing_back:
                raise
            return await self._hand_back_unclaimed(job_id)
        finally:
            self.runs.discard(run)
            self.metrics.running.dec()

    async def _renew_leases(self) -> None:
        """Keep our running jobs' leases fresh; stop jobs whose lease another worker took.
        This loop must outlive every error, or every long job on this worker would be taken
        over and run twice."""
        await every(self.settings.job_lease_seconds / 4, "lease renewal", self.renew_once,
                    log)

    async def renew_once(self) -> None:
        """One round of renewals for every run, in one round trip."""
        runs = list(self.runs)
        if not runs:
            return
        states = await self.ctx.store.renew_many([(run.job_id, run.owner) for run in runs],
                                                 self.settings.job_lease_seconds)
        for run, state in zip(runs, states, strict=True):
            if state is Renewal.CANCEL:
                self._cancel(run.job_id)
            elif state is Renewal.LOST:
                log.warning("job lost to another worker", extra={"job_id": run.job_id})
                run.task.cancel()

    async def _reap(self) -> None:
        """Give jobs whose worker died (its lease lapsed, or before it claimed them) to a live
        worker, and send deferred jobs back to their queue when their capacity is due."""
        ticks = itertools.count(1)

        async def tick() -> None:
            await self.reap_once()
            await self.release_deferred()
            if next(ticks) % UNACKED_SWEEP_TICKS == 0:
                await self.resend_unacked()

        await every(min(self.settings.job_lease_seconds / 4, 0.5), "reaper", tick, log)

    async def release_deferred(self) -> list[str]:
        released = []
        for job_id in await self.ctx.store.due(keys.deferred()):
            queue = await self.redis.hget(keys.job(job_id), "priority")
            # Only the worker whose ZREM wins sends it, in the same step.
            if await self.ctx.store.send_again(job_id, as_str(queue or b"batch"), deferred=True):
                released.append(job_id)
        return released

    async def resend_unacked(self) -> list[str]:
        """Jobs whose worker died after taking their message but before claiming them (no
        lease yet) go back to their queue after two leases, not Celery's visibility timeout."""
        sent = await self.ctx.store.resend_unacked(2 * self.settings.job_lease_seconds)
        for job_id in sent:
            log.warning("job sent again: its worker died before claiming it",
                        extra={"job_id": job_id})
        return sent

    async def reap_once(self) -> list[str]:
        requeued = []
        for job_id in await self.ctx.store.due(keys.leases()):
            if self.running(job_id):
                continue  # ours: our renewal keeps it (or finds it lost)
            if await self.ctx.store.requeue_if_expired(job_id):
                requeued.append(job_id)
                log.warning("job requeued after its worker was lost", extra={"job_id": job_id})
        return requeued

    async def _heartbeat(self) -> None:
        await every(HEARTBEAT_SECONDS, "heartbeat", self._beat, log, at_once=True)

    async def _beat(self) -> None:
        await self.ctx.store.heartbeat(self.name, FORGET_WORKER_SECONDS)

    async def _listen(self) -> None:
        """Cancel requests arrive on one pub/sub channel per process, not a poll per job."""
        while True:
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(keys.cancel_channel())
                async for message in pubsub.listen():
                    self._cancel(as_str(message["data"]))
            except Exception:  # Redis restarted: resubscribe after a pause
                log.warning("cancel listener reconnecting", exc_info=True)
                await asyncio.sleep(1.0)

    def _cancel(self, job_id: str) -> None:
        runs = self.running(job_id)
        if runs:
            self.ctx.cancel_requested.add(job_id)
        for run in runs:
            run.task.cancel()

    async def _forget(self) -> None:
        await self.ctx.client.close()  # its connections, before the loop that owns them stops
        await self.redis.zrem(keys.workers(), self.name)

    def drain(self, grace: float) -> None:
        """On SIGTERM: running jobs get `grace` seconds to finish, then the rest are handed
        back to the queue (their clients see a `reset` and the job goes on elsewhere)."""
        asyncio.run_coroutine_threadsafe(self._hand_back_after(grace), self.loop)

    async def _hand_back_after(self, grace: float) -> None:
        await asyncio.sleep(grace)
        for run in list(self.runs):
            log.warning("handing job back on shutdown", extra={"job_id": run.job_id})
            self.ctx.handing_back.add(run.job_id)
            run.task.cancel()

    def close(self) -> None:
        for future in self._housekeeping:
            future.cancel()
        with contextlib.suppress(Exception):
            self.call(self._forget())
        self.loop.call_soon_threadsafe(self.loop.stop)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.new_event_loop()
