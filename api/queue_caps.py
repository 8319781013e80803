"""The caps on queued jobs, per tenant and in total (`MAX_QUEUED_JOBS_PER_TENANT`,
`MAX_QUEUED_JOBS`): a flood is refused at the door, before Redis fills.

The submit script counts members of the queued sets; nothing removes a job when a worker takes
it (the claim touches only the job's own keys), so near a cap the oldest members are checked
and those no longer queued are dropped before anyone is refused."""

from __future__ import annotations

from shared import keys
from shared.errors import QueueFull, ServiceUnavailable, SidecarError
from shared.jobstore import JobStore
from shared.record import as_str
from shared.settings import Settings

PRUNE_BATCH = 500
RETRY_AFTER_SECONDS = 5.0


async def prune(store: JobStore, tenant: str | None) -> int:
    """Drop up to PRUNE_BATCH of the oldest members that are no longer queued (or whose record
    expired) from the tenant's set, or from everyone's; how many were dropped."""
    name = keys.queued(tenant)
    members = [as_str(m) for m in await store.redis.zrange(name, 0, PRUNE_BATCH - 1)]  # type: ignore[arg-type]
    if not members:
        return 0
    statuses = await store.get_many(members, ("status",))
    gone = [m for m, (status,) in zip(members, statuses, strict=True) if status != "queued"]
    if gone:
        await store.redis.zrem(name, *gone)
        if tenant is not None:
            await store.redis.zrem(keys.queued(), *gone)
    return len(gone)


def refusal(which: str, settings: Settings) -> SidecarError:
    if which == "tenant":
        return QueueFull(f"this tenant has {settings.max_queued_jobs_per_tenant} jobs queued "
                         "(MAX_QUEUED_JOBS_PER_TENANT): wait for some to start",
                         retry_after=RETRY_AFTER_SECONDS)
    return ServiceUnavailable(f"the service has {settings.max_queued_jobs} jobs queued "
                              "(MAX_QUEUED_JOBS): try again shortly",
                              retry_after=RETRY_AFTER_SECONDS)


async def room(store: JobStore, tenant: str, count: int, settings: Settings) -> None:
    """Refuse `count` more jobs (a batch) that would pass either cap."""
    for which, name, cap in (("tenant", keys.queued(tenant), settings.max_queued_jobs_per_tenant),
                             ("total", keys.queued(), settings.max_queued_jobs)):
        if await store.redis.zcard(name) + count > cap:
            await prune(store, tenant if which == "tenant" else None)
            if await store.redis.zcard(name) + count > cap:
                raise refusal(which, settings)


async def note(store: JobStore, tenant: str, job_ids: list[str], ttl: int) -> None:
    """Count a batch's jobs as queued."""
    now = float((await store.redis.time())[0])
    async with store.redis.pipeline(transaction=False) as pipe:
        for name in (keys.queued(tenant), keys.queued()):
            pipe.zadd(name, dict.fromkeys(job_ids, now))
            pipe.expire(name, ttl)
        await pipe.execute()
