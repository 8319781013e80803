"""The scripts that change a job's state atomically, each in one round trip (their text is in
`shared/lua/job/`, with the prelude they share).

Every script but SUBMIT touches only one job's keys (record, event log, channel), which share
the job's hash tag, plus the service-wide indexes it keeps in step with the record (the lease
index, the deferred set, a queue's list). The job record is the authority: a worker may act on a
job only while it holds the record's `owner` token, so a worker presumed dead cannot write after
another took over. Times come from Redis's own clock, so leases do not depend on the hosts'
clocks agreeing.
"""

from __future__ import annotations

from shared.lua import source


def _job(name: str, *extra: str) -> str:
    return source(f"job/{name}", "job/prelude", *extra)


CREATE = _job("create")
SUBMIT = _job("submit", "budget")
SETTLED = _job("settled")
CLAIM = _job("claim", "job/carry")
BEGIN_ATTEMPT = _job("begin_attempt")
USAGE = _job("usage")
TOKEN = _job("token")
RENEW = _job("renew")
FINISH = _job("finish")
CANCEL = _job("cancel")
REQUEUE = _job("requeue")
RELEASE = _job("release")
SEND_AGAIN = _job("send_again")
HOLD = _job("hold")
RESEND_UNACKED = _job("resend_unacked")

# A worker's housekeeping, on the service-wide sets.
DEFER = source("worker/defer")
DUE = source("worker/due")
HEARTBEAT = source("worker/heartbeat")
