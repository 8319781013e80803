"""Graceful shutdown: a SIGTERMed worker finishes its job or hands it back within its grace
period; a SIGTERMed API tells its SSE clients to reconnect, and they lose nothing."""

from __future__ import annotations

import signal

import pytest

from sidecar.jobs import JobsClient
from tests.conftest import Stack
from tests.helpers import events, submit, text_of
from tests.stack import start_api, start_worker

pytestmark = pytest.mark.integration


def test_sigterm_worker_hands_back_after_its_grace(stack: Stack) -> None:
    leaving = start_worker({**stack.env, "WORKER_SHUTDOWN_GRACE_SECONDS": "0.5"}, "leaving",
                           queues="batch")
    staying = None
    try:
        job_id = submit(stack.url, priority="batch", max_tokens=400)
        assert events(stack.url, job_id, limit=4)[-1].event == "token"
        leaving.proc.send_signal(signal.SIGTERM)
        leaving.proc.wait(20)  # warm shutdown completed within the grace, job handed back
        staying = start_worker(stack.env, "staying", queues="batch")
        stream = events(stack.url, job_id, timeout=60)
        final = stream[-1].data
        assert final["status"] == "succeeded" and final["attempts"] == 2
        kinds = [e.event for e in stream]
        assert "reset" in kinds
        assert any(e.event == "status" and e.data.get("reason") == "worker_shutdown"
                   for e in stream)
        assert text_of(stream) == final["result"]["text"]
    finally:
        leaving.stop()
        if staying is not None:
            staying.stop()


def test_sigterm_worker_finishes_a_short_job(stack: Stack) -> None:
    worker = start_worker(stack.env, "finisher", queues="batch")
    try:
        job_id = submit(stack.url, priority="batch", max_tokens=120)  # ~1.2 s of streaming
        assert events(stack.url, job_id, limit=4)[-1].event == "token"
        worker.proc.send_signal(signal.SIGTERM)
        worker.proc.wait(30)
        stream = events(stack.url, job_id)
        assert stream[-1].data["status"] == "succeeded" and stream[-1].data["attempts"] == 1
        assert "reset" not in [e.event for e in stream]
    finally:
        worker.stop()


def test_sigterm_api_sends_reconnect_and_clients_resume(stack: Stack) -> None:
    doomed = start_api(stack.env, "doomed-api")
    try:
        job_id = submit(stack.url, max_tokens=300)
        got = []
        with JobsClient(doomed.url) as client:
            for event in client.events(job_id):
                got.append(event)
                if len(got) == 4:
                    doomed.proc.send_signal(signal.SIGTERM)
                    doomed.proc.wait(10)  # exits promptly: its streams ended
                    client.http.base_url = stack.url  # the load balancer's next pick
        assert [e.id for e in got] == list(range(1, len(got) + 1))
        assert got[-1].event == "done" and got[-1].data["status"] == "succeeded"
    finally:
        doomed.stop()


def test_each_worker_serves_its_own_metrics(stack: Stack) -> None:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from tests.procs import free_port

    port = free_port()
    worker = start_worker({**stack.env, "WORKER_METRICS_PORT": str(port)}, "scraped",
                          queues="batch")
    try:
        job_id = submit(stack.url, priority="batch", max_tokens=20)
        assert events(stack.url, job_id)[-1].data["status"] == "succeeded"
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(text) for s in f.samples}
        assert samples[("sidecar_worker_jobs_total", (("status", "succeeded"),
                                                     ("type", "chat")))] == 1
        assert samples[("sidecar_worker_time_to_first_token_seconds_count", ())] == 1
        assert ("sidecar_worker_queue_depth", (("queue", "batch"),)) in samples
        assert any(name == "sidecar_worker_tokens_total" for name, _ in samples)
    finally:
        worker.stop()
