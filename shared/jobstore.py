"""Jobs in Redis: records, their event logs, and every state change (through `scripts`).

Both the API and the workers use this one store, so a job's life has one definition. It holds
no state of its own: any process can pick up where another left off.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from shared import events, keys, scripts
from shared.budgets import SPEND_TTL_SECONDS
from shared.cache import FLIGHT_TTL_SECONDS
from shared.redis import queue_script, reload_if_lost
from shared.schemas import FINISHED

Record = dict[str, str]


def utcnow() -> str:
    """ISO 8601 UTC with milliseconds, the one timestamp format of the API."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    """The inverse of `utcnow`'s format."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from one API timestamp to another; None when either is missing."""
    if not start or not end:
        return None
    return (parse_time(end) - parse_time(start)).total_seconds()


def new_job_id(idempotency_key: str | None = None, scope: str = "") -> str:
    """A random id, or one derived from the idempotency key so a repeat finds the same job."""
    if idempotency_key is None:
        return secrets.token_hex(12)
    return sha256(f"{scope}\x00{idempotency_key}".encode()).hexdigest()[:24]


def as_str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def links(job_id: str) -> dict[str, str]:
    return {"self": f"/api/jobs/{job_id}", "events": f"/api/jobs/{job_id}/events"}


def _json(record: Record, name: str) -> Any:
    raw = record.get(name)
    return json.loads(raw) if raw else None


@dataclass(frozen=True)
class Claim:
    """What a claim found: its outcome (see `scripts.CLAIM`), the attempt it began (0 for
    none) and the record after it ({} when the job is missing or nothing was claimed)."""

    outcome: str
    attempt: int
    record: Record


def claimed(result: Any) -> Claim:
    """A claim's result as `JobStore.queue_claim` queued it."""
    if isinstance(result, Exception):
        raise result
    outcome, attempt, flat = result
    pairs = [as_str(v) for v in flat]
    return Claim(as_str(outcome), int(attempt), dict(zip(pairs[::2], pairs[1::2], strict=True)))


def view(record: Record) -> dict[str, Any]:
    """The public JSON of a job (GET /api/jobs/{id}, and the `done` event's data)."""
    usage = _json(record, "usage") or {"input_tokens": 0, "output_tokens": 0}
    return {
        "id": record["id"],
        "type": record["type"],
        "status": record["status"],
        "model": record["model"],
        "priority": record["priority"],
        "result": _json(record, "result"),
        "usage": usage,
        "cost_usd": float(record.get("cost_usd") or 0.0),
        "error": _json(record, "error"),
        "attempts": int(record.get("attempts") or 0),
        "created_at": record["created_at"],
        "started_at": record.get("started_at") or None,
        "first_token_at": record.get("first_token_at") or None,
        "finished_at": record.get("finished_at") or None,
        "batch_id": record.get("batch_id") or None,
        "links": links(record["id"]),
    }


def spend_keys(record: Record) -> list[str]:
    """The budget windows' spend hashes the job reserved its worst case in."""
    return record.get("budget_keys", "").split()


@dataclass(frozen=True)
class Gate:
    """What a new job must pass to be queued: the queue caps (the tenant's and everyone's
    queued sets, and their caps) and the budget windows its worst-case `cost` must fit."""

    queued: tuple[str, str] = ("", "")
    caps: tuple[int, int] = (0, 0)
    spend_keys: tuple[str, ...] = ()
    limits: tuple[str, ...] = ()
    cost: float = 0.0


class JobStore:
    """Reads and changes jobs; every change is one atomic script."""

    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl = ttl_seconds
        self._create = redis.register_script(scripts.CREATE)
        self._submit = redis.register_script(scripts.SUBMIT)
        self._settled = redis.register_script(scripts.SETTLED)
        self._claim = redis.register_script(scripts.CLAIM)
        self._begin = redis.register_script(scripts.BEGIN_ATTEMPT)
        self._token = redis.register_script(scripts.TOKEN)
        self._usage = redis.register_script(scripts.USAGE)
        self._renew = redis.register_script(scripts.RENEW)
        self._finish = redis.register_script(scripts.FINISH)
        self._cancel = redis.register_script(scripts.CANCEL)
        self._requeue = redis.register_script(scripts.REQUEUE)
        self._release = redis.register_script(scripts.RELEASE)

    @staticmethod
    def _keys(job_id: str) -> list[str]:
        return [keys.job(job_id), keys.events(job_id), keys.channel(job_id)]

    async def submit(self, fields: dict[str, str], message: str, cache_digest: str = "",
                     gate: Gate | None = None) -> tuple[str, Any]:
        """Record a new queued job and push its Celery `message` onto its queue, in one step,
        if it passes the `gate` (queue caps, budgets: its worst case is reserved).

        Returns ('created', None), ('exists', the record) for an idempotent repeat, and with a
        `cache_digest`: ('hit', the cached answer as JSON) or ('follow', the job id of the
        identical request in flight); ('full', 'tenant' | 'total') or ('budget', the 1-based
        index of the refusing window) when the gate refuses."""
        gate = gate or Gate()
        flat = [item for pair in fields.items() for item in pair]
        cache = [keys.response_cache(cache_digest), keys.flight(cache_digest)] \
            if cache_digest else ["", ""]
        outcome, *rest = await self._submit(
            [*self._keys(fields["id"]), *cache, keys.celery_queue(fields["priority"]),
             *gate.queued, *gate.spend_keys],
            [self.ttl, events.data({"status": "queued"}), fields["id"], FLIGHT_TTL_SECONDS,
             message, *gate.caps, repr(gate.cost), SPEND_TTL_SECONDS, *gate.limits, *flat],
        )
        kind = as_str(outcome)
        if kind == "exists":
            pairs = [as_str(v) for v in rest[0]]
            return kind, dict(zip(pairs[::2], pairs[1::2], strict=True))
        return kind, as_str(rest[0]) if rest else None

    async def settled(self, fields: dict[str, str], text: str) -> bool:
        """Record a job that is finished as it is created (answered from the cache), with its
        text as one token event and its `done`; False if the id exists."""
        final = view(fields)
        token = events.data({"text": text}) if text else ""
        flat = [item for pair in fields.items() for item in pair]
        return bool(await self._settled(self._keys(fields["id"]),
                                        [self.ttl, token, events.data(final), *flat]))

    async def create(self, fields: dict[str, str]) -> bool:
        """Record a job without queueing it (a single-flight follower); False if it exists."""
        flat = [item for pair in fields.items() for item in pair]
        created, _ = await self._create(self._keys(fields["id"]),
                                        [self.ttl, events.data({"status": fields["status"]}),
                                         *flat])
        return bool(created)

    async def create_many(self, records: list[dict[str, str]],
                          messages: list[str] | None = None) -> None:
        """Store many jobs in one round trip (existing ones are left as they are); with their
        Celery `messages`, each job is queued by the same script that records it (`submit`)."""
        payload = events.data({"status": "queued"})
        script = self._create if messages is None else self._submit
        pending = list(range(len(records)))
        for _ in range(2):
            async with self.redis.pipeline(transaction=False) as pipe:
                for index in pending:
                    fields = records[index]
                    flat = [item for pair in fields.items() for item in pair]
                    if messages is None:
                        queue_script(pipe, script, self._keys(fields["id"]),
                                     [self.ttl, payload, *flat])
                    else:
                        queue_script(pipe, script, [*self._keys(fields["id"]), "", "",
                                                    keys.celery_queue(fields["priority"]),
                                                    "", ""],
                                     [self.ttl, payload, fields["id"], 0, messages[index],
                                      0, 0, 0, 0, *flat])
                results = await pipe.execute(raise_on_error=False)
            # Those that met NOSCRIPT did nothing: run them again once the script is back.
            lost = await reload_if_lost(self.redis, results, script)
            for result in results:
                if isinstance(result, Exception) and not isinstance(result, NoScriptError):
                    raise result
            if not lost:
                return
            pending = [pending[i] for i in lost]
        raise NoScriptError("the job scripts could not be loaded")

    async def get_many(self, job_ids: list[str], fields: tuple[str, ...]) -> list[list[str]]:
        """The named fields of many jobs in one round trip ('' where missing)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hmget(keys.job(job_id), list(fields))
            rows = await pipe.execute()
        return [[as_str(v) if v is not None else "" for v in row] for row in rows]

    async def get_all(self, job_ids: list[str]) -> list[Record | None]:
        """Many whole records in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(keys.job(job_id))
            rows = await pipe.execute()
        return [{as_str(k): as_str(v) for k, v in row.items()} or None for row in rows]

    async def get(self, job_id: str) -> Record | None:
        raw = await self.redis.hgetall(keys.job(job_id))
        if not raw:
            return None
        return {as_str(k): as_str(v) for k, v in raw.items()}

    def queue_claim(self, pipe: Pipeline, job_id: str, owner: str, lease: float,
                    max_deliveries: int, begin: bool = True,
                    admitted: tuple[str, str] | None = None) -> None:
        """Queue a claim on `pipe` (two results: the lease index's, then the claim's; see
        `claimed`). With `admitted` (an in-flight set and a call id), the claim happens only if
        an admission queued before it on the same pipeline put the call in that set.
        The job is put in the lease index first, so the reaper can find it if this worker dies
        right after."""
        payload = events.data({"status": "running"})
        args: list[str | float] = [owner, lease, max_deliveries, utcnow(), payload, self.ttl,
                                   "1" if begin else "0"]
        claim_keys = self._keys(job_id)
        if admitted is not None:
            claim_keys.append(admitted[0])
            args.append(admitted[1])
        pipe.zadd(keys.leases(), {job_id: time.time() + lease})
        queue_script(pipe, self._claim, claim_keys, args)

    async def claim(self, job_id: str, owner: str, lease: float, max_deliveries: int,
                    begin: bool = True) -> Claim:
        """Take the job (and begin its first attempt) in one round trip."""
        for _ in range(2):
            async with self.redis.pipeline(transaction=False) as pipe:
                self.queue_claim(pipe, job_id, owner, lease, max_deliveries, begin)
                _, result = await pipe.execute(raise_on_error=False)
            if not await reload_if_lost(self.redis, [result], self._claim):
                break
        return claimed(result)

    async def begin_attempt(self, job_id: str, owner: str) -> int:
        return int(await self._begin(self._keys(job_id), [owner, self.ttl]))

    async def append_token(self, job_id: str, owner: str, text: str, seq: int) -> int:
        """Append a chunk of text; `seq` (increasing per owner) makes a resend after a lost
        reply harmless."""
        payload = events.data({"text": text})
        return int(await self._token(self._keys(job_id),
                                     [owner, payload, utcnow(), self.ttl, seq, len(text)]))

    async def note_usage(self, job_id: str, owner: str, usage: dict[str, int],
                         settled: bool = False) -> None:
        """Keep what this delivery has used so far in the record, so that a worker dying
        mid-call leaves its bill behind (see `scripts.CLAIM`); `settled` when `usage` holds
        the last attempt's whole usage."""
        await self._usage(self._keys(job_id), [owner, json.dumps(usage), "1" if settled else "0"])

    async def renew(self, job_id: str, owner: str, lease: float) -> int:
        return int(await self._renew(self._keys(job_id), [owner, lease]))

    async def finish(
        self, job_id: str, owner: str, updates: dict[str, str]
    ) -> dict[str, Any] | None:
        """Record the outcome and emit `done`; None if this worker no longer owns the job."""
        record = await self.get(job_id)
        if record is None:
            return None
        updates = {"finished_at": utcnow(), **updates}
        final = view({**record, **updates})
        flat = [item for pair in updates.items() for item in pair]
        done = await self._finish([*self._keys(job_id), *spend_keys(record)],
                                  [owner, events.data(final), self.ttl, *flat])
        return final if done else None

    async def cancel(self, job_id: str) -> str:
        """Cancel a queued job now, or flag a running one for its worker; returns prior status."""
        record = await self.get(job_id)
        if record is None:
            return "missing"
        if record["status"] in FINISHED:
            return record["status"]
        finished_at = utcnow()
        final = view({**record, "status": "cancelled", "finished_at": finished_at})
        result = await self._cancel([*self._keys(job_id), *spend_keys(record)],
                                    [events.data(final), finished_at, self.ttl])
        return as_str(result)

    async def release(self, job_id: str, owner: str) -> bool:
        """Hand a job back to the queue (its worker is shutting down)."""
        payload = events.data({"status": "queued", "reason": "worker_shutdown"})
        released = await self._release(self._keys(job_id), [owner, payload, self.ttl])
        await self.redis.zrem(keys.leases(), job_id)
        return bool(released)

    async def requeue_if_expired(self, job_id: str) -> bool:
        payload = events.data({"status": "queued", "reason": "worker_lost"})
        return bool(await self._requeue(self._keys(job_id), [payload, self.ttl]))

    async def last_event(self, job_id: str) -> bytes | None:
        frame = await self.redis.lindex(keys.events(job_id), -1)
        return frame.encode() if isinstance(frame, str) else frame

    async def read_events(self, job_id: str, after: int = 0) -> list[bytes]:
        """Frames with ids greater than `after`, in order."""
        frames = await self.redis.lrange(keys.events(job_id), after, -1)
        return [f.encode() if isinstance(f, str) else f for f in frames]
