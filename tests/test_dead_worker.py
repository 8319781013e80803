"""A worker SIGKILLed while it holds jobs in every state — one streaming (claimed, its in-flight
slot taken) and one waiting for that slot (its message taken, not claimed) — with
`MAX_IN_FLIGHT=1`: a new worker runs both well within a minute. Before, the waiting job stayed
`queued` until Celery's two-hour visibility timeout, and the dead call's slot blocked the model
for 600 s."""

from __future__ import annotations

import time
from typing import Any

import redis

from shared import keys
from tests.helpers import events, submit, wait_status
from tests.procs import RedisServer, wait_until
from tests.stack import service_env, start_api, start_worker


def test_a_killed_workers_streaming_and_waiting_jobs_run_again(simulator: Any) -> None:
    server = RedisServer().start()
    env = service_env(server.url, simulator.url, MAX_IN_FLIGHT="1")
    api = start_api(env, "dead-api")
    doomed = start_worker(env, "doomed")
    rescuer = None
    store = redis.Redis.from_url(server.url)
    try:
        streaming = submit(api.url, "a long answer about the dry spell", max_tokens=400)
        assert events(api.url, streaming, limit=4)[-1].event == "token"
        waiting = submit(api.url, "a second question", max_tokens=50)
        wait_until(lambda: store.hget(keys.job(waiting), "held_by") is not None, 10,
                   "the second job waits for the in-flight slot")
        assert store.hget(keys.job(waiting), "status") == b"queued"
        doomed.kill()
        killed_at = time.monotonic()
        rescuer = start_worker(env, "rescuer")
        for job_id in (streaming, waiting):
            final = wait_status(api.url, job_id, {"succeeded", "failed"}, timeout=60)
            assert final["status"] == "succeeded", final
        assert time.monotonic() - killed_at < 60
        # Nothing is left behind: no lease entry, no in-flight slot, no unacknowledged message.
        assert store.zcard(keys.leases()) == 0
        assert sum(store.zcard(k) for k in store.scan_iter("sidecar:{limit:*}:inflight")) == 0
    finally:
        store.close()
        for proc in (doomed, rescuer, api):
            if proc is not None:
                proc.stop()
        server.stop()
