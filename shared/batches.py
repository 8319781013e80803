"""Batches of jobs — the nightly drought reports and bulk submissions: creating them the same
way from the API and from the nightly task, and reading their progress from their jobs (counted
at read time from the jobs themselves, so no counter can drift whatever path ended a job)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, StrictStr
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import WatchError

from shared import events, keys
from shared.budgets import worst_case_usd
from shared.jobspec import hints, job_fields
from shared.jobstore import JobStore
from shared.record import Record, as_str, flatten, new_job_id, parse_time, utcnow
from shared.redis import queue_script
from shared.schemas import JobRequest, Strict
from shared.settings import Settings
from shared.taskwire import run_job_message
from shared.validation import parse

Mode = Literal["queue", "anthropic_batch"]
MAX_JOBS = 10_000
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
log = logging.getLogger("sidecar.batches")


class BatchRequest(Strict):
    name: StrictStr | None = Field(None, max_length=200)
    jobs: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_JOBS)
    mode: Mode = "queue"


@dataclass(frozen=True)
class Owner:
    """Who a batch belongs to, and the budget windows its jobs are charged in."""

    tenant: str = ""
    subject: str = ""
    spend_keys: tuple[str, ...] = ()


def plan(request: BatchRequest, settings: Settings, batch_id: str,
         owner: Owner = Owner()) -> list[Record]:
    """Every job of the batch validated and laid out, at batch priority whatever its body
    says, each with its worst-case cost noted for its budget windows; an error names
    `jobs.<i>.<field>`."""
    records = []
    discounted = request.mode == "anthropic_batch"
    for index, body in enumerate(request.jobs):
        job = parse(JobRequest, {"cache": False, **body, "priority": "batch"}, ("jobs", index))
        fields = job_fields(job, settings, owner.tenant, owner.subject,
                            job_id=new_job_id(f"{batch_id}:{index}", "batch"),
                            prefix=("jobs", index))
        fields["batch_id"], fields["cache_key"], fields["mode"] = batch_id, "", request.mode
        fields["budget_keys"] = " ".join(owner.spend_keys)
        fields["budget_reserved"] = repr(worst_case_usd(fields, settings, discounted))
        records.append(fields)
    return records


class BatchStore:
    def __init__(self, redis: Redis, jobs: JobStore) -> None:
        self.redis = redis
        self.jobs = jobs

    async def create(self, batch_id: str, request: BatchRequest, records: list[Record],
                     messages: list[str] | None = None, owner: Owner = Owner()) -> bool:
        """Store the batch and its jobs (each queued with its Celery message, if given) in one
        transaction, so a crash leaves all of it or none; False (and nothing written) if the id
        exists or another creator of the same id got there first."""
        batch_key = keys.batch(batch_id)
        script = self.jobs._create if messages is None else self.jobs._submit
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(batch_key)
            if await pipe.exists(batch_key):
                return False
            # EVALSHA inside MULTI cannot be retried on NOSCRIPT: load the script first.
            await pipe.script_load(script.script)
            pipe.multi()
            for index, fields in enumerate(records):
                _queue_job(pipe, self.jobs, script, fields, messages[index] if messages else None)
            pipe.hset(batch_key, mapping={
                "id": batch_id, "name": request.name or batch_id, "mode": request.mode,
                "total": len(records), "created_at": utcnow(),
                "tenant": owner.tenant, "subject": owner.subject})
            pipe.rpush(keys.batch_jobs(batch_id), *[r["id"] for r in records])
            for key in (batch_key, keys.batch_jobs(batch_id)):
                pipe.expire(key, self.jobs.ttl)
            if request.mode == "anthropic_batch":  # the poll submits it if the task is lost
                pipe.sadd(keys.upstream_batches(), batch_id)
            try:
                await pipe.execute()
            except WatchError:
                return False
        return True

    async def info(self, batch_id: str) -> dict[str, str] | None:
        raw = await self.redis.hgetall(keys.batch(batch_id))
        return {as_str(k): as_str(v) for k, v in raw.items()} if raw else None

    async def job_ids(self, batch_id: str) -> list[str]:
        return [as_str(j) for j in await self.redis.lrange(keys.batch_jobs(batch_id), 0, -1)]

    async def set(self, batch_id: str, **fields: str) -> None:
        for name, value in fields.items():
            await self.redis.hset(keys.batch(batch_id), name, value)

    async def snapshot(self, batch_id: str) -> dict[str, Any] | None:
        """Progress as `GET /api/batches/{id}` shows it."""
        info = await self.info(batch_id)
        if info is None:
            return None
        rows = await self.jobs.get_many(await self.job_ids(batch_id),
                                        ("status", "cost_usd", "usage"))
        counts = Counter(status for status, _, _ in rows)
        usage: Counter[str] = Counter()
        for _, _, raw_usage in rows:
            usage.update(json.loads(raw_usage) if raw_usage else {})
        cost = sum(float(c or 0) for _, c, _ in rows)
        finished = sum(counts[s] for s in ("succeeded", "failed", "cancelled"))
        status = _status(info, finished, len(rows))
        if status != "running" and not info.get("finished_at"):
            info["finished_at"] = utcnow()
            await self.redis.hsetnx(keys.batch(batch_id), "finished_at", info["finished_at"])
        return {
            "id": batch_id, "name": info.get("name"), "status": status, "mode": info["mode"],
            "total": len(rows), "counts": {s: counts[s] for s in STATUSES},
            "cost_usd": round(cost, 6), "usage": dict(usage),
            "eta_seconds": _eta(info, finished, len(rows)) if status == "running" else 0,
            "created_at": info["created_at"], "finished_at": info.get("finished_at") or None,
            "upstream_batch_id": info.get("upstream_id") or None,
            "links": links(batch_id),
        }


def _queue_job(pipe: Pipeline, jobs: JobStore, script: AsyncScript, fields: Record,
               message: str | None) -> None:
    """One job's CREATE (or, with its Celery message, SUBMIT with no gate: the batch was
    admitted as a whole) on the transaction, as `JobStore.create_many` would run it."""
    flat = flatten(fields)
    job_keys = [keys.job(fields["id"]), keys.events(fields["id"]), keys.channel(fields["id"])]
    payload = events.data({"status": "queued"})
    if message is None:
        queue_script(pipe, script, job_keys, [jobs.ttl, payload, *flat])
    else:
        queue_script(pipe, script, [*job_keys, "", "", keys.celery_queue(fields["priority"]),
                                    "", ""],
                     [jobs.ttl, payload, fields["id"], 0, message, 0, 0, 0, 0, *flat])


def links(batch_id: str) -> dict[str, str]:
    base = f"/api/batches/{batch_id}"
    return {"self": base, "events": f"{base}/events", "report": f"{base}/report"}


def _status(info: dict[str, str], finished: int, total: int) -> str:
    if finished < total:
        return "running"
    return "cancelled" if info.get("cancel") == "1" else "completed"


def _eta(info: dict[str, str], finished: int, total: int) -> float | None:
    """Remaining jobs at the pace so far; None until one has finished."""
    if not finished:
        return None
    created = parse_time(info["created_at"]).timestamp()
    pace = (time.time() - created) / finished
    return round(pace * (total - finished), 1)


async def start(store: BatchStore, settings: Settings, request: BatchRequest, batch_id: str,
                upstream_submit: Callable[[str], None], owner: Owner = Owner(),
                records: list[Record] | None = None) -> bool:
    """Create the batch and set it going: its jobs recorded and queued together on the batch
    queue (as one job is: a job is never recorded without being queued), or one Anthropic
    Message Batch submitted by a worker. False when the id already existed."""
    records = records if records is not None else plan(request, settings, batch_id, owner)
    if request.mode == "queue":
        messages = [run_job_message(r["id"], r["priority"], hints(r, settings)) for r in records]
        return await store.create(batch_id, request, records, messages, owner)
    if not await store.create(batch_id, request, records, owner=owner):
        return False
    try:
        await asyncio.to_thread(upstream_submit, batch_id)
    except Exception:  # the batch is recorded: the periodic poll submits it all the same
        log.warning("submit task not sent; the poll will submit the batch",
                    extra={"batch_id": batch_id}, exc_info=True)
    return True
