"""Every Redis key and channel name Sidecar uses, built in one place.

Keys that one Lua script touches together share a Redis Cluster hash tag (`{job id}`), except
for the submit script, which also queues the job's Celery message (see `scripts.SUBMIT`).
"""

from __future__ import annotations

PREFIX = "sidecar"

# Keys that live without a TTL, as glob patterns, and what bounds each. Every other key Sidecar
# writes expires (job records, event logs, cached answers, flights, spend windows, queued sets);
# `tests/test_key_bounds.py` lists the keys after a run against this table, and
# `python -m bench.chaos` after a bad day.
LASTING = {
    f"{PREFIX}:leases": "one entry per running job; the scripts that end, requeue or hand back "
                        "a job drop it",
    f"{PREFIX}:workers": "one entry per worker process; silent ones are dropped after an hour",
    f"{PREFIX}:deferred": "one entry per queued job waiting for capacity",
    f"{PREFIX}:limit-scopes": "one member per model and per tenant's quota scope",
    f"{PREFIX}:{{limit:*}}:*": "per model or tenant scope: bucket levels; calls in flight and "
                               "waiting, whose entries lapse with their lease",
    f"{PREFIX}:metrics:*": "one hash per metric; fields per label value (models, statuses, "
                           "error types, histogram buckets)",
    f"{PREFIX}:upstream-batches": "one member per Message Batch not yet collected",
    "interactive": "Celery's queue: one message per queued job",
    "batch": "Celery's queue: one message per queued job",
    "unacked": "kombu: one message per job a worker holds",
    "unacked_index": "kombu: one entry per job a worker holds",
    "unacked_mutex": "kombu: a lock, expiring",
    "_kombu.binding*": "kombu: one set per queue, of its bindings (and its bookkeeping)",
}


def job(job_id: str) -> str:
    """Hash holding a job's record."""
    return f"{PREFIX}:{{{job_id}}}:job"


def events(job_id: str) -> str:
    """List of a job's pre-rendered SSE frames; the 1-based position is the SSE id."""
    return f"{PREFIX}:{{{job_id}}}:events"


def channel(job_id: str) -> str:
    """Pub/sub channel on which a job's new frames are announced."""
    return f"{PREFIX}:{{{job_id}}}:channel"


def celery_queue(name: str) -> str:
    """The list kombu's Redis transport keeps a queue's messages in (priority 0)."""
    return name


def celery_unacked() -> str:
    """kombu's hash of messages taken by a worker and not yet acknowledged, by delivery tag."""
    return "unacked"


def celery_unacked_index() -> str:
    """kombu's sorted set of those delivery tags, scored by when they were taken (host time)."""
    return "unacked_index"


def leases() -> str:
    """Sorted set of running job ids scored by the time their worker's lease expires."""
    return f"{PREFIX}:leases"


def cancel_channel() -> str:
    """Pub/sub channel telling workers to stop a running job."""
    return f"{PREFIX}:cancel"


def workers() -> str:
    """Sorted set of live worker names scored by their last heartbeat."""
    return f"{PREFIX}:workers"


def response_cache(digest: str) -> str:
    """A cached answer for a request's stable hash."""
    return f"{PREFIX}:{{cache:{digest}}}:answer"


def limits(scope: str) -> str:
    """Hash of one limiter scope's limits and bucket levels (a model, or `client:<key>`)."""
    return f"{PREFIX}:{{limit:{scope}}}:buckets"


def inflight(scope: str) -> str:
    """Sorted set of a scope's calls in flight, scored by when to presume them dead."""
    return f"{PREFIX}:{{limit:{scope}}}:inflight"


def waiting(scope: str) -> str:
    """Sorted set of calls waiting for a scope's capacity, scored by when to presume their
    waiter dead (it moves the score on at every nap)."""
    return f"{PREFIX}:{{limit:{scope}}}:waiting"


def limit_scopes() -> str:
    """Set of limiter scopes in use, for /api/limits and /metrics."""
    return f"{PREFIX}:limit-scopes"


def deferred() -> str:
    """Sorted set of queued job ids handed back to wait for capacity, scored by when to retry."""
    return f"{PREFIX}:deferred"


def flight(digest: str) -> str:
    """The job id currently answering a request with this hash (single-flight)."""
    return f"{PREFIX}:{{cache:{digest}}}:flight"


def metric(name: str) -> str:
    """Hash of one service-wide figure (requests, jobs, tokens, cost, histograms)."""
    return f"{PREFIX}:metrics:{name}"


def batch(batch_id: str) -> str:
    """Hash of a batch: name, mode, totals, upstream batch id, timestamps."""
    return f"{PREFIX}:{{batch:{batch_id}}}:batch"


def batch_jobs(batch_id: str) -> str:
    """List of a batch's job ids, in submission order."""
    return f"{PREFIX}:{{batch:{batch_id}}}:jobs"


def upstream_batches() -> str:
    """Set of batch ids whose Anthropic Message Batch is still to be collected."""
    return f"{PREFIX}:upstream-batches"


def queued(tenant: str | None = None) -> str:
    """Sorted set of queued job ids (one tenant's, or everyone's) scored by when they were
    queued; what the queue caps count. Pruned of jobs that left the queue when a cap is near."""
    return f"{PREFIX}:queued:{tenant}" if tenant is not None else f"{PREFIX}:queued"


def spend(tenant: str, subject: str | None, window: str) -> str:
    """Hash of `spent` and `reserved` dollars of a tenant (or one of its subjects) in one budget
    window (`d2026-12-06`, `m2026-12`)."""
    who = f"{tenant}:{subject}" if subject is not None else tenant
    return f"{PREFIX}:spend:{{{who}}}:{window}"


def batch_submitting(batch_id: str) -> str:
    """Expiring lock held by whichever worker is sending a batch as one Message Batch."""
    return f"{PREFIX}:{{batch:{batch_id}}}:submitting"
