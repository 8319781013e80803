"""Jobs in Redis: records, their event logs, and every state change (through `scripts`; the
record's shape and the scripts' outcomes are in `shared.record`).

Both the API and the workers use this one store, so a job's life has one definition. It holds
no state of its own: any process can pick up where another left off.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from shared import events, keys, scripts
from shared.budgets import SPEND_TTL_SECONDS
from shared.cache import FLIGHT_TTL_SECONDS
from shared.record import (
    Claim,
    Record,
    Renewal,
    as_str,
    claimed,
    flatten,
    merged,
    record_of,
    spend_keys,
    utcnow,
    view,
)
from shared.redis import queue_script, reload_if_lost
from shared.schemas import FINISHED
from shared.taskwire import run_job_message, unacked_job


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
        self._send_again = redis.register_script(scripts.SEND_AGAIN)
        self._hold = redis.register_script(scripts.HOLD)
        self._resend_unacked = redis.register_script(scripts.RESEND_UNACKED)
        self._defer = redis.register_script(scripts.DEFER)
        self._due = redis.register_script(scripts.DUE)
        self._heartbeat = redis.register_script(scripts.HEARTBEAT)

    @staticmethod
    def _keys(job_id: str) -> list[str]:
        return [keys.job(job_id), keys.events(job_id), keys.channel(job_id)]

    async def submit(self, fields: Record, message: str, cache_digest: str = "",
                     gate: Gate | None = None) -> tuple[str, Any]:
        """Record a new queued job and push its Celery `message` onto its queue, in one step,
        if it passes the `gate` (queue caps, budgets: its worst case is reserved).

        Returns ('created', None), ('exists', the record) for an idempotent repeat, and with a
        `cache_digest`: ('hit', the cached answer as JSON) or ('follow', the job id of the
        identical request in flight); ('full', 'tenant' | 'total') or ('budget', the 1-based
        index of the refusing window) when the gate refuses."""
        gate = gate or Gate()
        flat = flatten(fields)
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

    async def settled(self, fields: Record, text: str) -> bool:
        """Record a job that is finished as it is created (answered from the cache), with its
        text as one token event and its `done`; False if the id exists."""
        final = view(fields)
        token = events.data({"text": text}) if text else ""
        flat = flatten(fields)
        return bool(await self._settled(self._keys(fields["id"]),
                                        [self.ttl, token, events.data(final), *flat]))

    async def create(self, fields: Record) -> bool:
        """Record a job without queueing it (a single-flight follower); False if it exists."""
        flat = flatten(fields)
        created, _ = await self._create(self._keys(fields["id"]),
                                        [self.ttl, events.data({"status": fields["status"]}),
                                         *flat])
        return bool(created)

    async def create_many(self, records: list[Record],
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
                    flat = flatten(fields)
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
        return [record_of({as_str(k): as_str(v) for k, v in row.items()}) if row else None
                for row in rows]

    async def get(self, job_id: str) -> Record | None:
        raw = await self.redis.hgetall(keys.job(job_id))
        if not raw:
            return None
        return record_of({as_str(k): as_str(v) for k, v in raw.items()})

    def queue_claim(self, pipe: Pipeline, job_id: str, owner: str, lease: float,
                    max_deliveries: int, begin: bool = True,
                    admitted: tuple[str, str] | None = None) -> None:
        """Queue a claim on `pipe` (two results: the lease index's, then the claim's; see
        `claimed`). With `admitted` (an in-flight set and a call id), the claim happens only if
        an admission queued before it on the same pipeline put the call in that set.
        The same script puts the job in the lease index, so the reaper can find it if this
        worker dies right after."""
        payload = events.data({"status": "running"})
        args: list[str | float] = [owner, lease, max_deliveries, utcnow(), payload, self.ttl,
                                   "1" if begin else "0", job_id]
        claim_keys = [*self._keys(job_id), keys.leases()]
        if admitted is not None:
            claim_keys.append(admitted[0])
            args.append(admitted[1])
        queue_script(pipe, self._claim, claim_keys, args)

    async def claim(self, job_id: str, owner: str, lease: float, max_deliveries: int,
                    begin: bool = True) -> Claim:
        """Take the job (and begin its first attempt) in one round trip."""
        for _ in range(2):
            async with self.redis.pipeline(transaction=False) as pipe:
                self.queue_claim(pipe, job_id, owner, lease, max_deliveries, begin)
                (result,) = await pipe.execute(raise_on_error=False)
            if not await reload_if_lost(self.redis, [result], self._claim):
                break
        return claimed(result)

    async def begin_attempt(self, job_id: str, owner: str) -> int:
        return int(await self._begin(self._keys(job_id), [owner, self.ttl]))

    async def append_token(self, job_id: str, owner: str, text: str, seq: int,
                           acked: int = 0, pieces: int = 1, whole: str = "") -> int:
        """Append a chunk of text; `seq` (increasing per owner) makes a resend after a lost
        reply harmless. `acked` is the highest event id this owner was answered with: a log
        shorter than that lost its tail in Redis (see `Refusal.LOG_LOST`), and `whole`, the
        attempt's text so far, lets the script repair it without reusing an id. `pieces` is
        how many of the upstream's deltas the chunk merges: each is at least one output token,
        what an attempt cut off by its worker's death is billed by."""
        payload = events.data({"text": text}) if text else ""  # '': deltas to count only
        args: list[str | int] = [owner, payload, utcnow(), self.ttl, seq, pieces, acked]
        if whole:
            args.append(events.data({"text": whole}))
        return int(await self._token(self._keys(job_id), args))

    async def note_usage(self, job_id: str, owner: str, usage: dict[str, int],
                         settled: bool = False) -> None:
        """Keep what this delivery has used so far in the record, so that a worker dying
        mid-call leaves its bill behind (see `scripts.CLAIM`); `settled` when `usage` holds
        the last attempt's whole usage."""
        await self._usage(self._keys(job_id), [owner, json.dumps(usage), "1" if settled else "0"])

    async def renew_many(self, held: list[tuple[str, str]], lease: float) -> list[Renewal]:
        """Renew the leases of many (job id, owner) pairs in one round trip."""
        for _ in range(2):
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id, owner in held:
                    queue_script(pipe, self._renew, [*self._keys(job_id), keys.leases()],
                                 [owner, lease, job_id])
                results = await pipe.execute(raise_on_error=False)
            if not await reload_if_lost(self.redis, results, self._renew):
                break
        for result in results:
            if isinstance(result, Exception):
                raise result
        return [Renewal(int(r)) for r in results]

    async def renew(self, job_id: str, owner: str, lease: float) -> Renewal:
        return Renewal(await self._renew([*self._keys(job_id), keys.leases()],
                                     [owner, lease, job_id]))

    async def finish(
        self, job_id: str, owner: str, updates: dict[str, str],
        answer: Mapping[str, Any] | None = None, cache_ttl: int = 0,
    ) -> dict[str, Any] | None:
        """Record the outcome and emit `done`; None if this worker no longer owns the job.
        A succeeded leader's `answer` is cached for identical requests by the same script that
        frees its flight."""
        record = await self.get(job_id)
        if record is None:
            return None
        updates = {"finished_at": utcnow(), **updates}
        final = view(merged(record, updates))
        flat = flatten(updates)
        digest = record.get("cache_key", "")
        cache = [keys.flight(digest), keys.response_cache(digest)] if digest else ["", ""]
        cached = json.dumps(answer) if answer is not None and digest else ""
        done = await self._finish(
            [*self._keys(job_id), keys.leases(), *cache, *spend_keys(record)],
            [owner, events.data(final), self.ttl, job_id, cached, cache_ttl, *flat])
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
        digest = record.get("cache_key", "")
        result = await self._cancel(
            [*self._keys(job_id), keys.flight(digest) if digest else "", *spend_keys(record)],
            [events.data(final), finished_at, self.ttl, job_id])
        return as_str(result)

    async def release(self, job_id: str, owner: str, queue: str) -> bool:
        """Hand a job back to its queue (its worker is shutting down): the record and the
        message in one step."""
        payload = events.data({"status": "queued", "reason": "worker_shutdown"})
        return bool(await self._release(
            [*self._keys(job_id), keys.leases(), keys.celery_queue(queue)],
            [owner, payload, self.ttl, job_id, run_job_message(job_id, queue)]))

    async def requeue_if_expired(self, job_id: str) -> bool:
        """Send a job whose lease lapsed (its worker died) back to its queue; False when its
        lease entry was stale (the entry is dropped or put right)."""
        queue = as_str(await self.redis.hget(keys.job(job_id), "priority") or b"interactive")
        payload = events.data({"status": "queued", "reason": "worker_lost"})
        return bool(await self._requeue(
            [*self._keys(job_id), keys.leases(), keys.celery_queue(queue)],
            [payload, self.ttl, job_id, run_job_message(job_id, queue)]))

    async def send_again(self, job_id: str, queue: str, deferred: bool = False) -> bool:
        """Put a still-queued job's message on its queue again: one parked in the deferred
        set (only the caller that takes it out sends it), or one a stopping worker held."""
        return bool(await self._send_again(
            [*self._keys(job_id), keys.deferred() if deferred else "",
             keys.celery_queue(queue)],
            [job_id, run_job_message(job_id, queue)]))

    async def hold(self, job_id: str, owner: str, lease: float) -> Record | None:
        """Read the record, and mark a still-queued job as held by this delivery while it waits
        for capacity (see `shared/lua/job/hold.lua`); None when the job is missing."""
        flat = [as_str(v) for v in await self._hold(self._keys(job_id), [owner, lease])]
        return record_of(dict(zip(flat[::2], flat[1::2], strict=True))) if flat else None

    async def resend_unacked(self, grace: float, limit: int = 100) -> list[str]:
        """Send again the jobs whose message a worker took more than `grace` seconds ago and
        never acknowledged, while the job is still queued and held by no live worker (see
        `shared/lua/job/resend_unacked.lua`). kombu scores its index by the taking host's
        clock, so this compares with this host's: `grace` is far longer than any skew."""
        due = await self.redis.zrangebyscore(keys.celery_unacked_index(), "-inf",
                                             time.time() - grace, 0, limit)
        if not due:
            return []
        tags = [as_str(t) for t in due if isinstance(t, bytes | str)]
        entries = await self.redis.hmget(keys.celery_unacked(), tags)
        sent = []
        for tag, entry in zip(tags, entries, strict=True):
            found = unacked_job(entry) if entry is not None else None
            if entry is None or found is None:
                continue  # another task's message (or gone): Celery's own timeout covers it
            job_id, queue = found
            if await self._resend_unacked(
                    [*self._keys(job_id), keys.celery_unacked(), keys.celery_unacked_index(),
                     keys.deferred(), keys.celery_queue(queue)],
                    [tag, entry, run_job_message(job_id, queue)]):
                sent.append(job_id)
        return sent

    async def defer(self, job_id: str, seconds: float) -> None:
        """Park a queued job until its capacity is due (Redis's clock)."""
        await self._defer([keys.deferred()], [job_id, seconds])

    async def due(self, key: str, limit: int = 200) -> list[str]:
        """Members of a time-scored set (leases, deferred) that are due by Redis's clock."""
        return [as_str(v) for v in await self._due([key], [limit])]

    async def heartbeat(self, worker: str, forget_after: float) -> None:
        await self._heartbeat([keys.workers()], [worker, forget_after])

    async def last_event(self, job_id: str) -> bytes | None:
        frame = await self.redis.lindex(keys.events(job_id), -1)
        return frame.encode() if isinstance(frame, str) else frame

    async def read_events(self, job_id: str, after: int = 0) -> list[bytes]:
        """Frames with ids greater than `after`, in order."""
        frames = await self.redis.lrange(keys.events(job_id), after, -1)
        return [f.encode() if isinstance(f, str) else f for f in frames]
