"""Reading a caller's own work. A job or batch that is not the caller's answers exactly as one
that does not exist (404, same message): ids cannot be probed, whatever the route."""

from __future__ import annotations

from typing import Any

from api import mirror
from api.auth import Principal
from shared.batches import BatchStore
from shared.errors import JobNotFound
from shared.jobstore import JobStore
from shared.record import Record, view

MAX_ID_LENGTH = 100


async def owned_record(store: JobStore, job_id: str, caller: Principal) -> Record:
    """The job's record if the caller may see it; JobNotFound otherwise."""
    record = await store.get(job_id) if len(job_id) <= MAX_ID_LENGTH else None
    if record is None or not caller.owns(record.get("tenant", ""), record.get("subject", "")):
        raise JobNotFound(f"no job with id {job_id[:MAX_ID_LENGTH]!r}")
    return record


async def job_view(store: JobStore, record: Record) -> dict[str, Any]:
    """The public JSON of a job, a single-flight follower's mirrored from its leader's run."""
    if not mirror.is_follower(record):
        return view(record)
    return mirror.view_of(record, await store.get(record["leader"]))


async def owned_job(store: JobStore, job_id: str, caller: Principal) -> dict[str, Any]:
    return await job_view(store, await owned_record(store, job_id, caller))


async def owned_batch(batches: BatchStore, batch_id: str, caller: Principal) -> dict[str, Any]:
    """The batch's progress if the caller may see it; JobNotFound otherwise."""
    info = await batches.info(batch_id) if len(batch_id) <= MAX_ID_LENGTH else None
    if info is None or not caller.owns(info.get("tenant", ""), info.get("subject", "")):
        raise JobNotFound(f"no batch with id {batch_id[:MAX_ID_LENGTH]!r}")
    snapshot = await batches.snapshot(batch_id)
    if snapshot is None:
        raise JobNotFound(f"no batch with id {batch_id[:MAX_ID_LENGTH]!r}")
    return snapshot
