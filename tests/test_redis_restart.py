"""Redis restarting under a running job: with AOF on, the job, its events and its queue survive;
the worker and the API reconnect; a client following the job (with resume) sees it through."""

from __future__ import annotations

import time

import pytest

from sidecar.jobs import JobsClient
from tests.conftest import Stack
from tests.helpers import submit, text_of
from tests.procs import RedisServer
from tests.stack import service_env, start_api, start_worker

pytestmark = pytest.mark.integration


def test_job_survives_a_redis_restart(stack: Stack) -> None:
    redis = RedisServer(appendonly=True).start()
    env = service_env(redis.url, stack.sim_url, SSE_KEEPALIVE_SECONDS="1")
    worker = start_worker(env, "restart-worker")
    api = start_api(env, "restart-api")
    try:
        job_id = submit(api.url, max_tokens=400)  # about 4 s of streaming
        seen = []
        with JobsClient(api.url, timeout=30) as client:
            for event in client.events(job_id):
                seen.append(event)
                if len(seen) == 4:
                    redis.stop(keep_data=True)  # SIGTERM: Redis writes its AOF and exits
                    time.sleep(1.0)
                    redis.start()
        final = seen[-1].data
        assert seen[-1].event == "done" and final["status"] == "succeeded", final
        assert [e.id for e in seen] == list(range(1, len(seen) + 1))
        assert text_of(seen) == final["result"]["text"]
    finally:
        api.stop()
        worker.stop()
        redis.stop()
