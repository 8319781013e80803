"""Hostile requests against the real API process: each gets a 4xx JSON error (never a 500 or a
dropped connection), every answer carries `nosniff`, and the process keeps serving."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.conftest import Stack

pytestmark = pytest.mark.integration

JOB = b'{"type": "chat", "input": {"message": "hi"}, "max_tokens": %s}'
BODY_LIMIT = 1_048_576  # MAX_BODY_BYTES's default


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def error(self) -> dict[str, Any]:
        assert self.headers["content-type"].startswith("application/json"), self.body[:200]
        error: dict[str, Any] = json.loads(self.body)["error"]
        assert error["type"] and error["message"]
        return error


def send(url: str, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str | bytes] | None = None) -> Answer:
    """One request over a fresh connection, headers sent byte for byte as given."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        conn.close()


def post_json(stack: Stack, path: str, body: bytes,
              content_type: str = "application/json") -> Answer:
    return send(stack.url, "POST", path, body, {"Content-Type": content_type})


@pytest.fixture
def api(stack: Stack) -> Iterator[Stack]:
    """The stack's API, checked alive and healthy after each hostile request."""
    yield stack
    assert stack.api.proc.poll() is None, stack.api.output()[-2000:]
    health = send(stack.url, "GET", "/health")
    assert health.status == 200
    assert health.headers["x-content-type-options"] == "nosniff"


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HOSTILE_BODIES: list[tuple[str, bytes, int]] = [
    ("deeply nested", _deep(100_000), 400),
    ("deeply nested object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 400),
    ("nested under the recursion limit", b'{"type": "chat", "input": {"message": "x", '
                                          b'"history": ' + _deep(900) + b"}}", 422),
    ("an int of 5000 digits", JOB % (b"9" * 5000), 400),
    ("an int of 4000 digits", JOB % (b"9" * 4000), 422),
    ("a float that overflows", JOB % b"1e99999", 400),
    ("NaN", JOB % b"NaN", 400),
    ("-Infinity", b'{"type": "chat", "input": {"message": "hi"}, "temperature": -Infinity}', 400),
    ("a string near the body limit",
     b'{"type": "chat", "input": {"message": "' + b"x" * (BODY_LIMIT - 100) + b'"}}', 422),
    ("escapes near the body limit",
     b'{"type": "chat", "input": {"message": "' + b"\\n" * (BODY_LIMIT // 2 - 40) + b'"}}', 422),
    ("invalid UTF-8", b'{"type": "chat", "input": {"message": "\xc3\x28"}}', 400),
    ("a lone surrogate escape", b'{"type": "chat", "input": {"message": "\\ud800"}}', 400),
    ("UTF-16", '{"type": "chat"}'.encode("utf-16"), 400),
    ("a JSON array", b"[1, 2]", 400),
    ("nothing but whitespace", b"  \r\n\t ", 400),
]


@pytest.mark.parametrize(("body", "status"), [(b, s) for _, b, s in HOSTILE_BODIES],
                         ids=[name for name, _, _ in HOSTILE_BODIES])
@pytest.mark.parametrize("path", ["/api/jobs", "/api/chat", "/api/batches"])
def test_hostile_bodies(api: Stack, path: str, body: bytes, status: int) -> None:
    answer = post_json(api, path, body)
    if path != "/api/jobs" and status == 422:
        assert 400 <= answer.status < 500, answer.body[:300]  # other routes, other shapes
    else:
        assert answer.status == status, answer.body[:300]
    answer.error()
    assert answer.headers["x-content-type-options"] == "nosniff"


NOT_JSON = [None, "", "text/plain", "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x", "application/xml", "application/jsonx", "json",
            "text/json"]


@pytest.mark.parametrize("content_type", NOT_JSON)
@pytest.mark.parametrize("path", ["/api/jobs", "/api/chat", "/api/chat/stream", "/api/batches"])
def test_post_without_json_content_type_is_415(api: Stack, path: str,
                                                content_type: str | None) -> None:
    headers: dict[str, str | bytes] = {} if content_type is None else {
        "Content-Type": content_type}
    answer = send(api.url, "POST", path, b'{"type": "chat"}', headers)
    assert answer.status == 415, answer.body[:300]
    error = answer.error()
    assert error["type"] == "unsupported_media_type"
    assert "application/json" in error["message"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8",
                                          "Application/JSON;charset=UTF-8",
                                          "application/vnd.sidecar+json"])
def test_json_content_types_are_read(api: Stack, content_type: str) -> None:
    answer = post_json(api, "/api/jobs", b'{"type": "chat", "input": {}}', content_type)
    assert answer.status == 422 and answer.error()["field"] == "message"


@pytest.fixture(scope="module")
def finished_job(stack: Stack) -> str:
    answer = post_json(stack, "/api/jobs", JOB % b"5")
    job_id: str = json.loads(answer.body)["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = json.loads(send(stack.url, "GET", f"/api/jobs/{job_id}").body)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job_id
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not finish")


ODD_EVENT_IDS: list[str | bytes] = [
    "\u00b2".encode(), b"\xb2", "\u0663".encode(), b"1e3", b"1.5", b"-1", b"+1", b"0x10",
    str(10**20).encode(), b"9" * 5000, b"\xff\xfe", b"7 8", b"abc",
]


@pytest.mark.parametrize("value", ODD_EVENT_IDS, ids=lambda v: repr(v)[:24])
def test_odd_last_event_id_header(api: Stack, finished_job: str, value: bytes) -> None:
    answer = send(api.url, "GET", f"/api/jobs/{finished_job}/events",
                  headers={"Last-Event-ID": value})
    assert answer.status in (400, 422), answer.body[:300]
    assert answer.error()["field"] == "Last-Event-ID"
    assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "1e3", "-1", str(10**20), "9" * 5000,
                                   "\x00", "1\n2"], ids=lambda v: repr(v)[:24])
def test_odd_last_event_id_query(api: Stack, finished_job: str, value: str) -> None:
    path = f"/api/jobs/{finished_job}/events?last_event_id={quote(value)}"
    answer = send(api.url, "GET", path)
    assert answer.status in (400, 422), answer.body[:300]
    assert answer.error()["field"] == "Last-Event-ID"


@pytest.mark.parametrize("value", [b"", b"0", b"1", str(2**53 - 1).encode()])
def test_valid_last_event_ids_stream(api: Stack, finished_job: str, value: bytes) -> None:
    answer = send(api.url, "GET", f"/api/jobs/{finished_job}/events",
                  headers={"Last-Event-ID": value})
    assert answer.status == 200
    assert answer.headers["x-content-type-options"] == "nosniff"
    if value in (b"", b"0", b"1"):
        assert b"event: done" in answer.body


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/nowhere", 404), ("GET", "/api/jobs/" + "x" * 5000, 404),
    ("GET", "/api/jobs/%00%ff", 404), ("PUT", "/api/jobs", 405), ("PATCH", "/health", 405),
    ("GET", "/api/batches/b1/report?format=exe", 422), ("GET", "/metrics?format=%C2%B2", 422),
])
def test_routing_errors_are_json(api: Stack, method: str, path: str, status: int) -> None:
    answer = send(api.url, method, path)
    assert answer.status == status, answer.body[:300]
    answer.error()
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_every_answer_says_nosniff(api: Stack, finished_job: str) -> None:
    for path in ["/", "/health", "/ready", "/metrics", "/metrics?format=json", "/openapi.json",
                 "/api/limits", f"/api/jobs/{finished_job}", "/demo"]:
        answer = send(api.url, "GET", path)
        assert answer.status < 500
        assert answer.headers["x-content-type-options"] == "nosniff", path
