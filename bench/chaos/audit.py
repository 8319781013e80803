"""After the run: every job's fate read from Redis (its record and its event log), what is left
in the limiter, and which keys would live for ever."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from bench.chaos import rules
from shared import keys

FINISHED = ("succeeded", "failed", "cancelled")


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


@dataclass
class JobFate:
    job_id: str
    kind: str
    status: str  # the record's status; 'missing' when the record is gone
    done_events: int = 0
    job: dict[str, Any] = field(default_factory=dict)  # the last `done` event's data
    text_differs: bool = False
    resets: int = 0
    requeues: Counter[str] = field(default_factory=Counter)


def statuses(client: redis.Redis, job_ids: list[str]) -> list[str]:
    with client.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(keys.job(job_id), "status")
        return [_text(s) or "missing" for s in pipe.execute()]


def wait_finished(master: Callable[[], redis.Redis], job_ids: list[str], seconds: float,
                  progress: Callable[[str], None]) -> float:
    """Poll until every job is finished (or missing), or `seconds` pass; the time waited."""
    started = time.monotonic()
    last_note = 0.0
    while time.monotonic() - started < seconds:
        try:
            found = Counter(statuses(master(), job_ids))
        except redis.RedisError:
            time.sleep(1)
            continue
        open_jobs = found["queued"] + found["running"]
        if not open_jobs:
            break
        if time.monotonic() - last_note > 15:
            progress(f"waiting for {open_jobs} unfinished jobs: {dict(found)}")
            last_note = time.monotonic()
        time.sleep(2)
    return time.monotonic() - started


def job_fates(client: redis.Redis, kinds: dict[str, str]) -> list[JobFate]:
    """Each job's record status and event log, read in pipelined chunks."""
    fates = []
    ids = list(kinds)
    for start in range(0, len(ids), 200):
        chunk = ids[start:start + 200]
        with client.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.hget(keys.job(job_id), "status")
                pipe.lrange(keys.events(job_id), 0, -1)
            answers = pipe.execute()
        for index, job_id in enumerate(chunk):
            status, frames = answers[2 * index], answers[2 * index + 1]
            fates.append(fate(job_id, kinds[job_id], _text(status) or "missing", frames))
    for job in fates:
        if not job.done_events and job.status != "missing":
            job.job = unfinished_view(client, job.job_id)
    return fates


def unfinished_view(client: redis.Redis, job_id: str) -> dict[str, Any]:
    """What a job with no `done` has used so far: its earlier deliveries' usage and its
    current one's, from its record."""
    carried, delivery, attempts = (_text(v) for v in client.hmget(
        keys.job(job_id), "carried_usage", "delivery_usage", "attempts"))
    usage: Counter[str] = Counter()
    for part in (carried, delivery):
        usage.update(json.loads(part) if part else {})
    return {"status": "unfinished", "usage": dict(usage), "attempts": int(attempts or 0)}


def fate(job_id: str, kind: str, status: str, frames: list[bytes]) -> JobFate:
    events = [(name, data) for _, name, data in rules.parse_frames(frames)]
    dones = [data for name, data in events if name == "done"]
    job = dones[-1] if dones else {}
    return JobFate(job_id, kind, status, len(dones), job, rules.text_mismatch(events, job),
                   rules.count_events(events, "reset"), rules.requeue_reasons(events))


def describe_jobs(client: redis.Redis, job_ids: list[str]) -> dict[str, Any]:
    """For jobs gone wrong: their record (without input and result) and their events' names,
    with where the Celery queues stand."""
    found: dict[str, Any] = {}
    for job_id in job_ids[:10]:
        record = {_text(k): _text(v) for k, v in client.hgetall(keys.job(job_id)).items()}
        frames = rules.parse_frames(client.lrange(keys.events(job_id), 0, -1))
        found[job_id] = {
            "record": {k: v[:200] for k, v in record.items()
                       if k not in ("input", "result", "request")},
            "events": [name if name != "status" else f"status:{data.get('status')}"
                       f"{'/' + data['reason'] if data.get('reason') else ''}"
                       for _, name, data in frames if name != "token"],
            "leased": client.zscore(keys.leases(), job_id) is not None,
            "deferred": client.zscore(keys.deferred(), job_id) is not None,
        }
    return found


def queue_lengths(client: redis.Redis) -> dict[str, int]:
    return {name: int(client.llen(name)) for name in ("interactive", "batch", "unacked")
            if client.type(name) == b"list"} | {"unacked": int(client.hlen("unacked"))}


def limiter_leftovers(client: redis.Redis) -> dict[str, int]:
    """ZCARD of every limiter scope's in-flight and waiting set that is not empty."""
    found = {}
    for suffix in ("inflight", "waiting"):
        for key in client.scan_iter(match=f"{keys.PREFIX}:{{limit:*}}:{suffix}", count=500):
            if (size := client.zcard(key)):
                found[_text(key)] = int(size)
    return found


def keys_without_ttl(client: redis.Redis) -> dict[str, int]:
    """Patterns of the keys with no TTL (TTL -1), with how many keys each."""
    names = [_text(k) for k in client.scan_iter(count=1000)]
    permanent = []
    for start in range(0, len(names), 500):
        chunk = names[start:start + 500]
        with client.pipeline(transaction=False) as pipe:
            for name in chunk:
                pipe.ttl(name)
            permanent += [n for n, ttl in zip(chunk, pipe.execute(), strict=True) if ttl == -1]
    return rules.group_keys(permanent)


def unexpected(patterns: dict[str, int]) -> dict[str, int]:
    """The patterns without TTL that `shared.keys.LASTING` (the documented lasting keys)
    does not list."""
    return rules.undocumented(patterns, keys.LASTING)


def batch_job_ids(client: redis.Redis, batch_id: str) -> list[str]:
    return [_text(j) for j in client.lrange(keys.batch_jobs(batch_id), 0, -1)]


def key_count(client: redis.Redis) -> int:
    return int(client.dbsize())
