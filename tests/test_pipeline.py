"""The job pipeline end to end: real redis-server, simulator, Celery worker and uvicorn."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
import pytest

from sidecar.jobs import AsyncJobsClient
from tests.conftest import Stack
from tests.helpers import events, job, submit, text_of, wait_status

pytestmark = pytest.mark.integration


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_full_lifecycle(stack: Stack) -> None:
    response = httpx.post(stack.url + "/api/jobs", json={
        "type": "chat", "input": {"message": "Rainfall outlook?", "system": "Be brief."},
        "max_tokens": 25, "temperature": 0.2})
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status"] == "queued" and accepted["type"] == "chat"
    assert response.headers["location"] == f"/api/jobs/{accepted['id']}"
    assert accepted["links"]["events"] == f"/api/jobs/{accepted['id']}/events"

    stream = events(stack.url, accepted["id"])
    kinds = [e.event for e in stream]
    assert kinds[:2] == ["status", "status"] and kinds[-1] == "done"
    assert [e.data["status"] for e in stream[:2]] == ["queued", "running"]
    assert "token" in kinds
    assert [e.id for e in stream] == list(range(1, len(stream) + 1))

    final = stream[-1].data
    assert final == job(stack.url, accepted["id"])
    assert final["status"] == "succeeded" and final["attempts"] == 1
    assert final["result"]["text"] == text_of(stream) != ""
    assert final["model"] == "claude-sonnet-5-5"
    assert 0 < final["usage"]["output_tokens"] <= 25 and final["usage"]["input_tokens"] > 0
    assert final["cost_usd"] > 0 and final["error"] is None
    times = [_ts(final[k]) for k in ("created_at", "started_at", "first_token_at", "finished_at")]
    assert times == sorted(times)


def test_late_join_and_resume_from_every_position(stack: Stack) -> None:
    job_id = submit(stack.url, max_tokens=40)
    live = events(stack.url, job_id)
    late = events(stack.url, job_id)  # the job is finished: a late client gets everything
    assert [(e.id, e.event, e.data) for e in late] == [(e.id, e.event, e.data) for e in live]
    for position in range(len(live) + 3):  # past the end too: an empty stream that ends
        tail = events(stack.url, job_id, last=position)
        assert [e.id for e in tail] == [e.id for e in live[position:]]
        assert [e.data for e in tail] == [e.data for e in live[position:]]


def test_resume_mid_stream_on_another_api_process(stack: Stack) -> None:
    from tests.stack import start_api

    second = start_api(stack.env, "api-2")
    try:
        job_id = submit(stack.url, max_tokens=150)
        first_part = events(stack.url, job_id, limit=5)
        rest = events(second.url, job_id, last=first_part[-1].id)
        whole = first_part + rest
        assert [e.id for e in whole] == list(range(1, len(whole) + 1))
        assert whole[-1].event == "done" and whole[-1].data["status"] == "succeeded"
        assert text_of(whole) == whole[-1].data["result"]["text"]
    finally:
        second.stop()


def test_idempotency_key_returns_the_same_job(stack: Stack) -> None:
    body = {"type": "chat", "input": {"message": "hello"}, "max_tokens": 5,
            "idempotency_key": "idem-123"}
    first = httpx.post(stack.url + "/api/jobs", json=body)
    second = httpx.post(stack.url + "/api/jobs", json=body)
    assert first.status_code == 202 and second.status_code in (200, 202)
    assert first.json()["id"] == second.json()["id"]
    wait_status(stack.url, first.json()["id"], {"succeeded"})


def test_unknown_job_is_404_json(stack: Stack) -> None:
    for method, path in [("GET", "/api/jobs/nope"), ("GET", "/api/jobs/nope/events"),
                         ("DELETE", "/api/jobs/nope")]:
        response = httpx.request(method, stack.url + path)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"


def test_health_and_ready(stack: Stack) -> None:
    health = httpx.get(stack.url + "/health").json()
    assert health["status"] == "ok"
    ready = httpx.get(stack.url + "/ready")
    assert ready.status_code == 200 and ready.json()["workers"] >= 1


def test_hundred_concurrent_jobs(stack: Stack) -> None:
    async def run() -> list[dict[str, object]]:
        async with AsyncJobsClient(stack.url) as client:
            accepted = await asyncio.gather(*[
                client.submit_chat(f"Region {i}: soil moisture?", max_tokens=20)
                for i in range(100)])
            return await asyncio.gather(*[client.wait(a["id"]) for a in accepted])

    finals = asyncio.run(run())
    assert len({f["id"] for f in finals}) == 100
    assert all(f["status"] == "succeeded" for f in finals)
