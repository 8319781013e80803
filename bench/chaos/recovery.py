"""How long a dead worker's jobs wait: from the SIGKILL to the moment another worker owns the
job and runs it (its record's `owner` changes and its status is `running`, which the claim
writes together with the job's next `running` status event), read from Redis every 0.2 s. A job
seen already finished by a new owner counts as run again when it was seen (an upper bound)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import redis
import redis.asyncio as aioredis

from shared import keys

POLL = 0.2  # seconds
GIVE_UP = 300.0  # seconds after the kill


@dataclass
class Recovery:
    job_id: str
    killed_at: float
    rerun_s: float | None = None  # None: never ran again
    ended: str = ""  # how the watch ended: rerun | finished:<status> | gone | timeout


@dataclass
class RecoveryLog:
    recoveries: list[Recovery] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    clients: list[aioredis.Redis] = field(default_factory=list)
    read_errors: int = 0

    async def close(self) -> None:
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for client in self.clients:
            await client.aclose()


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def orphans(client: redis.Redis, owners: list[str]) -> list[str]:
    """Jobs in the lease index whose record says `running` under one of `owners`."""
    leased = [_text(j) for j in client.zrange(keys.leases(), 0, -1)]  # type: ignore[arg-type]
    with client.pipeline(transaction=False) as pipe:
        for job_id in leased:
            pipe.hmget(keys.job(job_id), "status", "owner")
        rows = pipe.execute()
    return [job_id for job_id, (status, owner) in zip(leased, rows, strict=True)
            if _text(status) == "running" and _text(owner).startswith(tuple(owners))]


async def watch(client: aioredis.Redis, recovery: Recovery, owners: tuple[str, ...],
                log: RecoveryLog) -> None:
    """Poll one job until a live worker runs it, it ends another way, or time is up."""
    key = keys.job(recovery.job_id)
    while time.time() - recovery.killed_at < GIVE_UP:
        await asyncio.sleep(POLL)
        try:
            status, owner = (_text(v) for v in await client.hmget(key, "status", "owner"))
        except (redis.RedisError, OSError):
            log.read_errors += 1
            continue
        if not status:
            recovery.ended = "gone"
            return
        if status in ("running", "succeeded", "failed") and not owner.startswith(owners):
            recovery.rerun_s = time.time() - recovery.killed_at
            recovery.ended = "rerun" if status == "running" else f"rerun, seen {status}"
            return
        if status in ("succeeded", "failed", "cancelled"):
            recovery.ended = f"finished:{status} by the dead owner"
            return
    recovery.ended = "timeout"


async def track_kill(client: redis.Redis, watcher: aioredis.Redis, owners: list[str],
                     killed_at: float, log: RecoveryLog) -> int:
    """Start watching the jobs the killed worker held; how many there were."""
    try:
        held = await asyncio.to_thread(orphans, client, owners)
    except redis.RedisError:
        log.read_errors += 1
        return -1
    log.clients.append(watcher)
    for job_id in held:
        recovery = Recovery(job_id, killed_at)
        log.recoveries.append(recovery)
        log.tasks.append(asyncio.create_task(watch(watcher, recovery, tuple(owners), log)))
    return len(held)
