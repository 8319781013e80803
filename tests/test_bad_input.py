"""Every way a request can be wrong gets a 4xx JSON error naming the problem, and nothing is
enqueued for it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis

from tests.conftest import Stack

pytestmark = pytest.mark.integration

OK_INPUT = {"message": "hi"}

JSON_CASES: list[tuple[Any, int, str]] = [
    ({"type": "chat", "input": {}}, 422, "message"),
    ({"type": "chat", "input": {"message": 5}}, 422, "message"),
    ({"type": "chat", "input": {"message": ""}}, 422, "message"),
    ({"type": "chat"}, 422, "input"),
    ({"input": OK_INPUT}, 422, "type"),
    ({"type": "poetry", "input": OK_INPUT}, 422, "type"),
    ({"type": 3, "input": OK_INPUT}, 422, "type"),
    ({"type": "chat", "input": OK_INPUT, "max_tokens": 10**6}, 422, "max_tokens"),
    ({"type": "chat", "input": OK_INPUT, "max_tokens": 0}, 422, "max_tokens"),
    ({"type": "chat", "input": OK_INPUT, "max_tokens": "many"}, 422, "max_tokens"),
    ({"type": "chat", "input": OK_INPUT, "temperature": 3}, 422, "temperature"),
    ({"type": "chat", "input": OK_INPUT, "priority": "urgent"}, 422, "priority"),
    ({"type": "chat", "input": OK_INPUT, "model": "gpt-4"}, 422, "model"),
    ({"type": "chat", "input": OK_INPUT, "model": 7}, 422, "model"),
    ({"type": "chat", "input": {**OK_INPUT, "system": ["x"]}}, 422, "system"),
    ({"type": "chat", "input": {**OK_INPUT, "history": [{"role": "bot", "content": "x"}]}},
     422, "history.0.role"),
    ({"type": "chat", "input": {**OK_INPUT, "history": ["hello"]}}, 422, "history.0"),
    ({"type": "chat", "input": {**OK_INPUT, "history": [{"role": "user"}]}},
     422, "history.0.content"),
    ({"type": "chat", "input": OK_INPUT, "surprise": 1}, 422, "surprise"),
    ([1, 2], 400, ""),
    ("just a string", 400, ""),
]


def _queued(stack: Stack) -> int:
    client = redis.Redis.from_url(stack.redis_url)
    try:
        return sum(int(client.llen(q)) for q in ("interactive", "batch"))
    finally:
        client.close()


def _jobs(stack: Stack) -> int:
    client = redis.Redis.from_url(stack.redis_url)
    try:
        return len(list(client.scan_iter("sidecar:*:job")))
    finally:
        client.close()


@pytest.mark.parametrize(("body", "status", "field"), JSON_CASES)
def test_invalid_json_bodies(stack: Stack, body: Any, status: int, field: str) -> None:
    before = _jobs(stack)
    response = httpx.post(stack.url + "/api/jobs", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if field:
        assert error["field"] == field
        assert field.split(".")[0] in error["message"]
    assert _jobs(stack) == before


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"message=hello", "application/x-www-form-urlencoded", 415),
        (b"<job><type>chat</type></job>", "application/xml", 415),
        (b"hello there", "text/plain", 415),
        (b"\xff\xfe{\"type\": \"chat\"}", "application/json", 400),
        (b"{\"type\": \"chat\",", "application/json", 400),
        (b"", "application/json", 400),
    ],
)
def test_bodies_that_are_not_json(stack: Stack, content: bytes, content_type: str,
                                  status: int) -> None:
    before = _queued(stack)
    response = httpx.post(stack.url + "/api/jobs", content=content,
                          headers={"content-type": content_type})
    assert response.status_code == status
    assert "JSON" in response.json()["error"]["message"]
    assert _queued(stack) == before


def test_oversized_body_is_413(stack: Stack) -> None:
    body = {"type": "chat", "input": {"message": "x" * 2_000_000}}
    response = httpx.post(stack.url + "/api/jobs", json=body)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"


def test_bad_last_event_id(stack: Stack) -> None:
    job_id = httpx.post(stack.url + "/api/jobs", json={"type": "chat", "input": OK_INPUT,
                                                        "max_tokens": 5}).json()["id"]
    response = httpx.get(f"{stack.url}/api/jobs/{job_id}/events",
                         headers={"Last-Event-ID": "abc"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "Last-Event-ID"
