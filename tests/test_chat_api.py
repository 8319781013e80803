"""The seed's HTTP surface on the running stack: /api/chat (+ stream), the response cache,
/metrics, GET /, /health and CORS."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sidecar.sse import parse_lines
from tests.conftest import Stack
from tests.procs import wait_until
from tests.stack import start_api

pytestmark = pytest.mark.integration


def _unique(text: str = "How much rain fell?") -> str:
    return f"{text} [{uuid.uuid4().hex[:8]}]"


def _metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_chat_answers_like_the_seed(stack: Stack) -> None:
    response = httpx.post(stack.url + "/api/chat", json={
        "message": _unique(), "max_tokens": 30, "system": "Be brief.",
        "history": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"response", "model", "usage", "cost_usd", "cached", "job_id"}
    assert body["response"] and body["cached"] is False and body["cost_usd"] > 0
    assert body["usage"]["output_tokens"] <= 30
    job = httpx.get(f"{stack.url}/api/jobs/{body['job_id']}").json()
    assert job["result"]["text"] == body["response"]


def test_chat_cache_hit_miss_and_opt_out(sim_clean: Stack) -> None:
    time.sleep(0.8)  # earlier tests' counts reach Redis within a flush
    before = _metrics(sim_clean.url)
    body = {"message": _unique(), "max_tokens": 20}
    first = httpx.post(sim_clean.url + "/api/chat", json=body, timeout=30).json()
    second = httpx.post(sim_clean.url + "/api/chat", json=body, timeout=30).json()
    assert first["cached"] is False and second["cached"] is True
    # The hit is a job of its own: nobody learns the id of the job that made the answer.
    assert second["response"] == first["response"] and second["job_id"] != first["job_id"]
    assert second["cost_usd"] == 0
    hit = httpx.get(f"{sim_clean.url}/api/jobs/{second['job_id']}", timeout=10).json()
    assert hit["status"] == "succeeded" and hit["result"]["text"] == first["response"]
    # Same text, different max_tokens: another request, another upstream call.
    third = httpx.post(sim_clean.url + "/api/chat", json={**body, "max_tokens": 21},
                       timeout=30).json()
    assert third["cached"] is False
    opted_out = httpx.post(sim_clean.url + "/api/chat", json={**body, "cache": False},
                           timeout=30).json()
    assert opted_out["cached"] is False and opted_out["job_id"] != first["job_id"]
    calls = sim_clean.sim("GET", "/_sim/stats")["requests"]["/v1/messages"]["200"]
    assert calls == 3
    time.sleep(0.8)  # each process adds its counts to Redis a few times a second
    after = _metrics(sim_clean.url)
    hits, misses = ("sidecar_cache_hits_total", ()), ("sidecar_cache_misses_total", ())
    assert after[hits] == before.get(hits, 0) + 1
    assert after[misses] == before.get(misses, 0) + 2


def test_cache_expires(stack: Stack) -> None:
    import json

    import redis as redis_lib

    body = {"message": _unique(), "max_tokens": 10}
    first = httpx.post(stack.url + "/api/chat", json=body, timeout=30).json()
    client = redis_lib.Redis.from_url(stack.redis_url)
    def ours() -> list[bytes]:
        return [k for k in client.scan_iter("sidecar:{cache:*}:answer")
                if json.loads(client.get(k) or "{}").get("job_id") == first["job_id"]]

    try:
        # The worker caches the answer right after the job's `done` reached the caller.
        wait_until(lambda: len(ours()) == 1, 5, "answer cached")
        (key,) = ours()
        assert 3500 < client.ttl(key) <= 3600  # CACHE_TTL_MINUTES=60
        assert httpx.post(stack.url + "/api/chat", json=body, timeout=30).json()["cached"]
        client.pexpire(key, 1)  # let the hour pass
        time.sleep(0.05)
        again = httpx.post(stack.url + "/api/chat", json=body, timeout=30).json()
        assert again["cached"] is False and again["job_id"] != first["job_id"]
    finally:
        client.close()


def test_fifty_identical_requests_make_one_upstream_call(sim_clean: Stack) -> None:
    body = {"message": _unique("Single flight?"), "max_tokens": 40}

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return list(await asyncio.gather(*[
                client.post(sim_clean.url + "/api/chat", json=body) for _ in range(50)]))

    answers = [r.json() for r in asyncio.run(fire())]
    assert all(a["response"] == answers[0]["response"] for a in answers)
    # One upstream call, but every caller has a job of its own.
    assert len({a["job_id"] for a in answers}) == 50
    assert sim_clean.sim("GET", "/_sim/stats")["requests"]["/v1/messages"] == {"200": 1}


def test_chat_stream_is_the_jobs_events(stack: Stack) -> None:
    with httpx.stream("POST", stack.url + "/api/chat/stream",
                      json={"message": _unique(), "max_tokens": 25}, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(parse_lines(response.iter_lines()))
    tokens = "".join(e.data["text"] for e in events if e.event == "token")
    assert events[-1].event == "done" and events[-1].data["result"]["text"] == tokens
    assert response.headers["x-job-id"] == events[-1].data["id"]


def test_chat_times_out_with_the_job_id(stack: Stack) -> None:
    # The simulator writes 24..160 tokens at 100/s after 20 ms, so every answer takes > 0.26 s.
    api = start_api({**stack.env, "TIMEOUT": "0.1"}, "impatient-api")
    try:
        response = httpx.post(api.url + "/api/chat",
                              json={"message": _unique(), "max_tokens": 300}, timeout=30)
        assert response.status_code == 504
        error = response.json()["error"]
        assert error["type"] == "timeout" and error["job_id"]
        job = httpx.get(f"{api.url}/api/jobs/{error['job_id']}").json()
        assert job["status"] in ("queued", "running", "succeeded")
    finally:
        api.stop()


def test_chat_rejects_bad_bodies(stack: Stack) -> None:
    for body, field in [({}, "message"), ({"message": 3}, "message"),
                        ({"message": "x", "history": [{"role": "x", "content": "y"}]},
                         "history.0.role"), ({"message": "x", "max_tokens": 10**7}, "max_tokens")]:
        response = httpx.post(stack.url + "/api/chat", json=body)
        assert response.status_code == 422 and response.json()["error"]["field"] == field
    assert httpx.post(stack.url + "/api/chat", content=b"hello").status_code == 415


def test_metrics_parse_and_move(stack: Stack) -> None:
    time.sleep(0.8)  # earlier tests' counts reach Redis within a flush
    before = _metrics(stack.url)
    httpx.post(stack.url + "/api/chat", json={"message": _unique(), "max_tokens": 15}, timeout=30)
    time.sleep(0.8)  # each process adds its counts to Redis a few times a second
    after = _metrics(stack.url)
    chat_key = ("sidecar_requests_total", (("endpoint", "/api/chat"), ("status", "200")))
    assert after[chat_key] == before.get(chat_key, 0) + 1
    done = ("sidecar_jobs_total", (("status", "succeeded"), ("type", "chat")))
    assert after[done] > before.get(done, 0)
    tokens = ("sidecar_tokens_total", (("kind", "output_tokens"), ("model", "claude-sonnet-5-5")))
    assert after[tokens] > before.get(tokens, 0)
    assert after[("sidecar_cost_usd_total", (("model", "claude-sonnet-5-5"),))] > 0
    assert after[("sidecar_time_to_first_token_seconds_count", ())] > 0
    assert ("sidecar_queue_depth", (("queue", "interactive"),)) in after
    assert after[("sidecar_uptime_seconds", ())] > 0
    seed = httpx.get(stack.url + "/metrics?format=json").json()
    assert set(seed) == {"requests_processed", "requests_failed", "success_rate", "model",
                         "uptime_seconds"}
    assert seed["requests_processed"] >= 1 and 0 <= seed["success_rate"] <= 1


def test_metrics_are_whole_across_api_processes(stack: Stack) -> None:
    second = start_api(stack.env, "metrics-api-2")
    try:
        httpx.get(second.url + "/api/jobs/missing")
        time.sleep(0.8)
        key = ("sidecar_requests_total", (("endpoint", "/api/jobs/{job_id}"), ("status", "404")))
        assert _metrics(stack.url)[key] == _metrics(second.url)[key] >= 1
    finally:
        second.stop()


def test_root_and_health(stack: Stack) -> None:
    root = httpx.get(stack.url + "/").json()
    assert root["name"] == "Sidecar" and root["version"] and root["links"]["docs"] == "/docs"
    health = httpx.get(stack.url + "/health").json()
    assert health["status"] == "ok" and health["redis"] == "ok" and health["workers"] >= 1


def test_cors_preflight_allowed_and_refused(stack: Stack) -> None:
    allowed = httpx.options(stack.url + "/api/chat", headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    refused = httpx.options(stack.url + "/api/chat", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
