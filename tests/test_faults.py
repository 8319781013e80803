"""Faults the pipeline must survive: cancellation, a worker killed mid-stream, Claude answering
529 / 400 / an error mid-stream — with real processes throughout."""

from __future__ import annotations

import time

import httpx
import pytest
import redis

from shared import keys
from shared.pricing import cost_usd
from tests.conftest import Stack
from tests.helpers import events, job, submit, text_of, wait_status
from tests.procs import wait_until
from tests.stack import start_worker

pytestmark = pytest.mark.integration


def test_529_then_success(sim_clean: Stack) -> None:
    sim_clean.sim("POST", "/_sim/faults", json={"kind": "status", "status": 529, "count": 1})
    job_id = submit(sim_clean.url)
    stream = events(sim_clean.url, job_id)
    final = stream[-1].data
    assert final["status"] == "succeeded"
    assert final["attempts"] == 2
    assert "reset" not in [e.event for e in stream]  # the failed call streamed nothing
    assert sim_clean.sim("GET", "/_sim/stats")["requests"]["/v1/messages"]["529"] == 1


def test_error_mid_stream_resets_and_retries(sim_clean: Stack) -> None:
    sim_clean.sim("POST", "/_sim/faults", json={
        "kind": "stream_error", "count": 1, "after_tokens": 5, "error_type": "overloaded_error"})
    job_id = submit(sim_clean.url, max_tokens=30)
    stream = events(sim_clean.url, job_id)
    kinds = [e.event for e in stream]
    assert "reset" in kinds
    first_reset = kinds.index("reset")
    assert "token" in kinds[:first_reset]  # the failed attempt's tokens stay in the log
    final = stream[-1].data
    assert final["status"] == "succeeded" and final["attempts"] == 2
    assert text_of(stream) == final["result"]["text"]
    # The cut attempt's output is billed too, as the ledger bills what was sent: one token per
    # delta it streamed (its real count never arrives).
    ledger = sim_clean.sim("GET", "/_sim/stats")["tokens"]
    assert ledger["output_tokens_cut"] >= 5
    assert final["usage"]["output_tokens"] == ledger["output_tokens"]


def test_dropped_stream_resets_and_retries(sim_clean: Stack) -> None:
    sim_clean.sim("POST", "/_sim/faults", json={"kind": "drop", "count": 1, "after_tokens": 4})
    job_id = submit(sim_clean.url, max_tokens=30)
    stream = events(sim_clean.url, job_id)
    final = stream[-1].data
    assert final["status"] == "succeeded" and final["attempts"] == 2
    assert "reset" in [e.event for e in stream]
    assert text_of(stream) == final["result"]["text"]
    assert sim_clean.sim("GET", "/_sim/stats")["streams"]["dropped"] == 1


def test_bad_request_fails_at_once(sim_clean: Stack) -> None:
    sim_clean.sim("POST", "/_sim/faults", json={"kind": "status", "status": 400, "count": 1})
    job_id = submit(sim_clean.url)
    final = events(sim_clean.url, job_id)[-1].data
    assert final["status"] == "failed" and final["attempts"] == 1
    assert final["error"]["type"] == "invalid_request_error"
    assert sim_clean.sim("GET", "/_sim/stats")["requests"]["/v1/messages"] == {"400": 1}


def test_persistent_overload_fails_after_retries(sim_clean: Stack) -> None:
    sim_clean.sim("POST", "/_sim/faults", json={"kind": "status", "status": 529, "count": 10})
    job_id = submit(sim_clean.url)
    final = events(sim_clean.url, job_id)[-1].data
    assert final["status"] == "failed" and final["attempts"] == 4  # MAX_RETRIES=3
    assert final["error"]["type"] == "overloaded_error"


def test_cancel_while_streaming_closes_upstream(sim_clean: Stack) -> None:
    job_id = submit(sim_clean.url, max_tokens=1000)  # ~10 s at the simulator's pace
    first = events(sim_clean.url, job_id, limit=3)
    assert first[-1].event == "token"
    started = time.monotonic()
    response = httpx.delete(f"{sim_clean.url}/api/jobs/{job_id}", timeout=10)
    assert response.status_code in (200, 202)
    final = wait_status(sim_clean.url, job_id, {"cancelled"}, timeout=5)
    assert time.monotonic() - started < 1.5
    assert final["result"]["text"]  # partial text kept
    wait_until(lambda: sim_clean.sim("GET", "/_sim/stats")["streams"]["aborted"] == 1, 3,
               "simulator saw the stream closed")
    assert events(sim_clean.url, job_id)[-1].data["status"] == "cancelled"


def test_cancel_while_queued_never_runs(sim_clean: Stack) -> None:
    # The session worker does not consume `batch`, so this job waits in the queue.
    job_id = submit(sim_clean.url, priority="batch")
    response = httpx.delete(f"{sim_clean.url}/api/jobs/{job_id}")
    assert response.status_code in (200, 202)
    assert response.json()["status"] == "cancelled"
    store = redis.Redis.from_url(sim_clean.redis_url)
    queue = keys.celery_queue("batch")
    assert store.llen(queue) == 1  # its message is still waiting
    batch_worker = start_worker(sim_clean.env, "batch-worker", queues="batch")
    try:
        # kombu keeps a delivered message in its `unacked` hash until the task acknowledges it.
        wait_until(lambda: store.llen(queue) == 0 and store.hlen("unacked") == 0, 10,
                   "batch worker took and acknowledged the message")
        time.sleep(0.5)
    finally:
        batch_worker.stop()
        store.close()
    assert job(sim_clean.url, job_id)["status"] == "cancelled"
    assert "/v1/messages" not in sim_clean.sim("GET", "/_sim/stats")["requests"]


def test_worker_killed_mid_stream_completes_elsewhere(sim_clean: Stack) -> None:
    doomed = start_worker(sim_clean.env, "doomed", queues="batch")
    rescuer = None
    try:
        job_id = submit(sim_clean.url, priority="batch", max_tokens=300)
        first = events(sim_clean.url, job_id, limit=4)
        assert first[-1].event == "token"
        doomed.kill()  # SIGKILL to the whole process group, mid-stream
        rescuer = start_worker(sim_clean.env, "rescuer", queues="batch")
        stream = events(sim_clean.url, job_id, timeout=90)
        final = stream[-1].data
        assert final["status"] == "succeeded"
        assert final["attempts"] == 2
        assert "reset" in [e.event for e in stream]
        # Billed once per attempt: the killed attempt's input exactly, its output from the text
        # it had streamed (about four characters a token), as the simulator's ledger counts.
        spent = sim_clean.sim("GET", "/_sim/stats")["tokens"]
        usage = final["usage"]
        assert usage["input_tokens"] == spent["input_tokens"]
        assert abs(usage["output_tokens"] - spent["output_tokens"]) <= \
            max(8, spent["output_tokens"] // 4)
        assert final["cost_usd"] == pytest.approx(cost_usd(final["model"], usage))
        assert text_of(stream) == final["result"]["text"]
        assert [e.id for e in stream] == list(range(1, len(stream) + 1))
    finally:
        doomed.stop()
        if rescuer is not None:
            rescuer.stop()
