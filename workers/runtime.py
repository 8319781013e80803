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
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from redis.exceptions import RedisError

from shared import keys
from shared.cache import ResponseCache
from shared.jobstore import JobStore, as_str
from shared.limiter import Limiter
from shared.metrics import Tally
from shared.redis import connect
from shared.settings import Settings
from shared.taskwire import Hints
from workers import claude
from workers.context import Context
from workers.metrics import WorkerMetrics
from workers.runner import prepare, run_job

log = logging.getLogger("sidecar.worker")

HEARTBEAT_SECONDS = 5.0

# Enqueues a job id again (on its queue); given by the Celery layer.
Requeue = Callable[[str, str], None]


class Runtime:
    def __init__(self, settings: Settings, requeue: Requeue) -> None:
        self.settings = settings
        self.requeue = requeue
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.loop = _new_loop()
        self.running: dict[str, tuple[str, asyncio.Task[str]]] = {}
        self._thread = threading.Thread(target=self.loop.run_forever, name="sidecar-loop",
                                        daemon=True)
        self._thread.start()
        self.metrics = WorkerMetrics(settings.redis_url)
        self.metrics.serve(settings.worker_metrics_port, settings.worker_metrics_host)
        self.ctx: Context = self.call(self._setup())
        self._housekeeping = [
            asyncio.run_coroutine_threadsafe(coro, self.loop)
            for coro in (self._renew_leases(), self._reap(), self._heartbeat(), self._listen(),
                         self.ctx.tally.run())
        ]

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def _setup(self) -> Context:
        self.redis = connect(self.settings.redis_url)
        store = JobStore(self.redis, self.settings.job_ttl_seconds)
        client = claude.create_client(self.settings, self.settings.worker_concurrency + 10)
        ctx = Context(settings=self.settings, store=store, client=client,
                      worker_name=self.name, limiter=Limiter(self.redis, self.settings),
                      cache=ResponseCache(self.redis, self.settings.cache_ttl_seconds),
                      tally=Tally(self.redis),
                      metrics=self.metrics, defer=self.defer, requeue=self._requeue)
        with contextlib.suppress(RedisError):  # Redis away at start: the patient path loads them
            await prepare(ctx)
        return ctx

    async def _hand_back_unclaimed(self, job_id: str) -> str:
        """Stopped before it was claimed (waiting for capacity): send it to the queue again."""
        self.ctx.handing_back.discard(job_id)
        record = await self.ctx.store.get(job_id)
        if record is not None and record["status"] == "queued":
            await self._requeue(job_id, record["priority"])
        return "handed back"

    async def _requeue(self, job_id: str, queue: str) -> None:
        await asyncio.to_thread(self.requeue, job_id, queue)

    async def defer(self, job_id: str, seconds: float) -> None:
        """Park a queued job in Redis until capacity is due; any worker's housekeeping sends it
        back to its queue then (so a worker dying meanwhile loses nothing)."""
        await self.redis.zadd(keys.deferred(), {job_id: time.time() + seconds})

    def run(self, job_id: str, hints: Hints | None = None) -> str:
        """Run a job on the loop and wait for it (called from a Celery task thread)."""
        future: concurrent.futures.Future[str] = asyncio.run_coroutine_threadsafe(
            self._run(job_id, hints), self.loop
        )
        return future.result()

    async def _run(self, job_id: str, hints: Hints | None) -> str:
        task = asyncio.current_task()
        assert task is not None
        self.running[job_id] = ("", task)
        self.metrics.running.inc()
        try:
            outcome = await run_job(self.ctx, job_id, hints)
        except asyncio.CancelledError:
            if job_id not in self.ctx.handing_back:
                raise
            outcome = await self._hand_back_unclaimed(job_id)
        finally:
            self.running.pop(job_id, None)
            self.metrics.running.dec()
        if outcome != "busy":
            await self.redis.zrem(keys.leases(), job_id)
        return outcome

    async def _renew_leases(self) -> None:
        """Keep our running jobs' leases fresh; stop jobs whose lease another worker took."""
        lease = self.settings.job_lease_seconds
        while True:
            await asyncio.sleep(lease / 4)
            for job_id, (_, task) in list(self.running.items()):
                record = await self.ctx.store.get(job_id)
                owner = (record or {}).get("owner", "")
                if not owner.startswith(self.name + ":"):
                    continue  # not claimed yet, or already finished
                state = await self.ctx.store.renew(job_id, owner, lease)
                await self.redis.zadd(keys.leases(), {job_id: time.time() + lease}, xx=True)
                if state == 2:
                    self._cancel(job_id)
                elif state == 0:
                    task.cancel()

    async def _reap(self) -> None:
        """Give jobs whose worker died (its lease lapsed) to a live worker, and send deferred
        jobs back to their queue when their capacity is due."""
        every = min(self.settings.job_lease_seconds / 4, 0.5)
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):
                await self.reap_once()
                await self.release_deferred()

    async def release_deferred(self) -> None:
        for raw in await self.redis.zrangebyscore(keys.deferred(), 0, time.time(), 0, 200):
            job_id = as_str(raw) if isinstance(raw, bytes | str) else str(raw)
            if await self.redis.zrem(keys.deferred(), job_id):  # one worker wins each job
                record = await self.ctx.store.get(job_id) or {}
                await asyncio.to_thread(self.requeue, job_id, record.get("priority", "batch"))

    async def reap_once(self) -> list[str]:
        due = await self.redis.zrangebyscore(keys.leases(), 0, time.time())
        requeued = []
        for raw in due:
            job_id = as_str(raw) if isinstance(raw, bytes | str) else str(raw)
            if job_id in self.running:
                continue
            if await self.ctx.store.requeue_if_expired(job_id):
                record = await self.ctx.store.get(job_id) or {}
                await asyncio.to_thread(self.requeue, job_id, record.get("priority", "interactive"))
                requeued.append(job_id)
                log.warning("job requeued after its worker was lost", extra={"job_id": job_id})
            await self.redis.zrem(keys.leases(), job_id)
        return requeued

    async def _heartbeat(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.redis.zadd(keys.workers(), {self.name: time.time()})
                await self.redis.zremrangebyscore(keys.workers(), 0, time.time() - 3600)
            await asyncio.sleep(HEARTBEAT_SECONDS)

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
        entry = self.running.get(job_id)
        if entry is not None:
            self.ctx.cancel_requested.add(job_id)
            entry[1].cancel()

    async def _forget(self) -> None:
        await self.ctx.client.close()  # its connections, before the loop that owns them stops
        await self.redis.zrem(keys.workers(), self.name)

    def drain(self, grace: float) -> None:
        """On SIGTERM: running jobs get `grace` seconds to finish, then the rest are handed
        back to the queue (their clients see a `reset` and the job goes on elsewhere)."""
        asyncio.run_coroutine_threadsafe(self._hand_back_after(grace), self.loop)

    async def _hand_back_after(self, grace: float) -> None:
        await asyncio.sleep(grace)
        for job_id, (_, task) in list(self.running.items()):
            log.warning("handing job back on shutdown", extra={"job_id": job_id})
            self.ctx.handing_back.add(job_id)
            task.cancel()

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
