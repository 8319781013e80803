"""A job's record and the outcomes of the scripts that change it: the Python side of the
protocol whose Redis side is `shared/lua/job/`. Plain data and pure functions, so the API, the
workers and the clients' tests read a job the same way without touching Redis.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from hashlib import sha256
from typing import Any, Required, TypedDict, cast


class Record(TypedDict, total=False):
    """A job's record as its Redis hash holds it (every value a string). The names are the
    protocol: the Lua scripts read and write the same ones, so a misspelt field is a type error
    here rather than a silently empty value there."""

    # Set when the job is created (`jobspec.job_fields`, batches, followers, cache hits).
    id: Required[str]
    type: Required[str]
    status: Required[str]  # queued | running | succeeded | failed | cancelled
    model: Required[str]
    priority: Required[str]  # interactive | batch
    created_at: Required[str]
    tenant: str
    subject: str
    input: str  # the job type's validated input, as JSON
    max_tokens: str
    temperature: str
    cache_key: str  # the request's stable hash ('' when it is not cached)
    batch_id: str
    mode: str  # a batch job's mode: queue | anthropic_batch
    input_tokens_estimate: str
    budget_keys: str  # the spend hashes its worst case is reserved in, space-separated
    budget_reserved: str
    budget_settled: str
    leader: str  # a single-flight follower's leader
    cached: str
    # Kept by the scripts while it runs.
    owner: str  # the token of the delivery holding the lease
    held_by: str  # while queued: the delivery waiting for capacity with its message
    held_until: str  # Redis time, seconds; renewed with the lease (see `hold`)
    lease_until: str  # Redis time, seconds
    deliveries: str
    attempts: str
    attempt_pieces: str  # upstream deltas the current attempt appended (a killed one's bill)
    streamed: str  # '1' once the current attempt streamed text (the next one sends `reset`)
    token_seq: str  # the owner's last appended chunk
    delivery_usage: str  # this delivery's usage so far, JSON
    carried_usage: str  # what earlier deliveries used, JSON
    cancel: str  # '1' once cancelling was asked
    started_at: str
    first_token_at: str
    # The outcome.
    finished_at: str
    result: str  # JSON
    usage: str  # JSON
    cost_usd: str
    error: str  # JSON


def record_of(pairs: dict[str, str]) -> Record:
    """A hash read from Redis as a record (what it holds is what the scripts wrote)."""
    return cast(Record, pairs)


def flatten(fields: Record | Mapping[str, str]) -> list[str]:
    """Field/value pairs as a script's arguments (HSET's order)."""
    return [str(item) for pair in fields.items() for item in pair]


def merged(record: Record, updates: Mapping[str, str]) -> Record:
    """The record with `updates` applied, as the script storing them will leave it."""
    return cast(Record, {**dict(record), **updates})


class Outcome(StrEnum):
    """What a claim found (see `shared/lua/job/claim.lua`)."""

    CLAIMED = "claimed"  # the caller owns the job and runs it
    FINISHED = "finished"  # it already ended: a late or second delivery
    BUSY = "busy"  # another worker holds a live lease on it
    MISSING = "missing"  # no record (expired, or never created)
    CANCEL = "cancel"  # cancelled while queued: the caller owns it and must finish it cancelled
    EXHAUSTED = "exhausted"  # delivered too many times: the caller must fail it
    UNADMITTED = "unadmitted"  # the admission queued before it failed: nothing changed


class Renewal(IntEnum):
    """What a lease renewal found (see `shared/lua/job/renew.lua`)."""

    LOST = 0  # another worker owns the job now: stop without writing
    RENEWED = 1
    CANCEL = 2  # renewed, and its caller asked to cancel it
    IDLE = 3  # not running: not claimed yet, sent back to the queue, or ended


class Refusal(IntEnum):
    """Why a token append or an attempt was refused (negative, where an event id would be)."""

    LOST = -1  # another worker owns the job now
    CANCELLED = -2  # its caller cancelled it
    LOG_LOST = -3  # Redis lost the log's tail: send the attempt's whole text again


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


def _json(raw: str | None) -> Any:
    return json.loads(raw) if raw else None


@dataclass(frozen=True)
class Claim:
    """What a claim found: its outcome (see `scripts.CLAIM`), the attempt it began (0 for
    none) and the record after it ({} when the job is missing or nothing was claimed)."""

    outcome: Outcome
    attempt: int
    record: Record


def claimed(result: Any) -> Claim:
    """A claim's result as `JobStore.queue_claim` queued it."""
    if isinstance(result, Exception):
        raise result
    outcome, attempt, flat = result
    pairs = [as_str(v) for v in flat]
    return Claim(Outcome(as_str(outcome)), int(attempt),
                 record_of(dict(zip(pairs[::2], pairs[1::2], strict=True))))


def view(record: Record) -> dict[str, Any]:
    """The public JSON of a job (GET /api/jobs/{id}, and the `done` event's data)."""
    usage = _json(record.get("usage")) or {"input_tokens": 0, "output_tokens": 0}
    return {
        "id": record["id"],
        "type": record["type"],
        "status": record["status"],
        "model": record["model"],
        "priority": record["priority"],
        "result": _json(record.get("result")),
        "usage": usage,
        "cost_usd": float(record.get("cost_usd") or 0.0),
        "error": _json(record.get("error")),
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
